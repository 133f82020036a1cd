//! A store in memory: for tests and for embedding without persistence.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Mutation, OutputRecord, RunRecord, RunSnapshot, RunStore, StoreError};

/// Keeps everything in memory; `commit` is atomic under a mutex and "durable" only for
/// the life of the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    runs: BTreeMap<String, RunSnapshot>,
    order: Vec<String>,
    output: BTreeMap<(String, String), Vec<OutputRecord>>,
    commits: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many commits were made (tests count transitions with it).
    pub fn commits(&self) -> u64 {
        self.inner.lock().map(|i| i.commits).unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied commit: commits only
        // insert into maps. So a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn missing_run(id: &str) -> StoreError {
    StoreError::Codec {
        key: format!("run/{id}"),
        detail: "a step or approval was written for a run that does not exist".into(),
    }
}

impl RunStore for MemoryStore {
    fn commit(&self, mutations: &[Mutation]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        // Check first, so that a bad batch changes nothing.
        for m in mutations {
            let run_id = match m {
                Mutation::Run(_) => continue,
                Mutation::Step(s) => &s.run_id,
                Mutation::Approval(a) => &a.run_id,
            };
            let created_here = mutations
                .iter()
                .any(|m| matches!(m, Mutation::Run(r) if &r.id == run_id));
            if !created_here && !inner.runs.contains_key(run_id) {
                return Err(missing_run(run_id));
            }
        }
        for m in mutations {
            match m {
                Mutation::Run(r) => {
                    if !inner.runs.contains_key(&r.id) {
                        inner.order.push(r.id.clone());
                    }
                    let entry = inner
                        .runs
                        .entry(r.id.clone())
                        .or_insert_with(|| RunSnapshot {
                            run: r.clone(),
                            steps: BTreeMap::new(),
                            approvals: BTreeMap::new(),
                        });
                    entry.run = r.clone();
                }
                Mutation::Step(s) => {
                    if let Some(run) = inner.runs.get_mut(&s.run_id) {
                        run.steps.insert(s.instance_id.clone(), s.clone());
                    }
                }
                Mutation::Approval(a) => {
                    if let Some(run) = inner.runs.get_mut(&a.run_id) {
                        run.approvals.insert(a.instance_id.clone(), a.clone());
                    }
                }
            }
        }
        inner.commits += 1;
        Ok(())
    }

    fn append_output(&self, chunks: &[OutputRecord]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for c in chunks {
            inner
                .output
                .entry((c.run_id.clone(), c.instance_id.clone()))
                .or_default()
                .push(c.clone());
        }
        Ok(())
    }

    fn load_run(&self, run_id: &str) -> Result<Option<RunSnapshot>, StoreError> {
        Ok(self.lock().runs.get(run_id).cloned())
    }

    fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .order
            .iter()
            .filter_map(|id| inner.runs.get(id))
            .map(|s| s.run.clone())
            .collect())
    }

    fn read_output(
        &self,
        run_id: &str,
        instance_id: &str,
    ) -> Result<Vec<OutputRecord>, StoreError> {
        Ok(self
            .lock()
            .output
            .get(&(run_id.to_string(), instance_id.to_string()))
            .cloned()
            .unwrap_or_default())
    }
}
