//! Plan files: the model, reading it from TOML, and checking cross-references.

pub(crate) mod check;
mod load;
mod model;
mod toml_reader;

pub use load::{COMMON_STEP_KEYS, is_step_id, load_plan};
pub(crate) use load::{
    DEFAULTS_KEYS, GROUP_KEYS, PARAM_KEYS, PLAN_KEYS, RETRY_KEYS, TOP_KEYS, not_in_choices,
    param_value_from_toml,
};
pub use model::{
    Capture, Defaults, FieldValue, FieldValueKind, GroupSpec, OnFailure, ParamSpec, ParamType,
    ParamValue, Plan, RetrySpec, StepSpec,
};
