//! Plan files: the model, reading it from TOML, and checking cross-references.

pub(crate) mod check;
mod load;
mod model;
mod toml_reader;

pub use load::{is_step_id, load_plan, COMMON_STEP_KEYS};
pub(crate) use load::{not_in_choices, param_value_from_toml, DEFAULTS_KEYS, GROUP_KEYS, PARAM_KEYS, PLAN_KEYS, RETRY_KEYS, TOP_KEYS};
pub use model::{
    Capture, Defaults, FieldValue, FieldValueKind, GroupSpec, OnFailure, ParamSpec, ParamType, ParamValue, Plan,
    RetrySpec, StepSpec,
};
