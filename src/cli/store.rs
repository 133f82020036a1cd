//! Opening the state store, the one way every command does it.

use std::path::Path;
use std::sync::Arc;

use rok_plan_engine::state::{RunRecord, RunStore, SledStore};

use crate::exit::CliError;

/// Opens (creating) the store for a run.
pub(crate) fn open(dir: &Path, force_unlock: bool) -> Result<Arc<dyn RunStore>, CliError> {
    Ok(Arc::new(SledStore::open(dir, force_unlock)?))
}

/// Opens an existing store for reading commands; no store there is an error, not a new one.
pub(crate) fn open_existing(dir: &Path, force_unlock: bool) -> Result<Arc<dyn RunStore>, CliError> {
    match SledStore::open_existing(dir, force_unlock)? {
        Some(s) => Ok(Arc::new(s)),
        None => Err(CliError::NoStore(dir.to_path_buf())),
    }
}

/// The run named `id`, or (without one) the latest run that `pick` accepts.
pub(crate) fn find_run(
    store: &dyn RunStore,
    id: Option<&str>,
    pick: impl Fn(&RunRecord) -> bool,
    what: &str,
) -> Result<RunRecord, CliError> {
    let runs = store.list_runs()?;
    match id {
        Some(id) => runs
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CliError::NoRun(format!("no run `{id}` in the state store"))),
        None => runs
            .into_iter()
            .rev()
            .find(|r| pick(r))
            .ok_or_else(|| CliError::NoRun(format!("no {what} run in the state store"))),
    }
}
