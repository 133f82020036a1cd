//! What a step type accepts: its fields, their kinds, which are required.
//!
//! One [`StepSchema`] per type drives three things, so they cannot drift apart: the
//! validation of plan files, the JSON Schema that editors use, and rendering for `plan`.

/// The kind of value a field takes. Strings are templates unless said otherwise.
#[derive(Clone, Copy, Debug)]
pub enum FieldKind {
    /// A template string.
    Text,
    /// A shell command (a template whose interpolated values are shell-quoted).
    Shell,
    /// `true` or `false`, or a template string that renders to one.
    Bool,
    /// An integer, or a template string that renders to one.
    Integer,
    /// A duration (`"30s"`, `"1h30m"`).
    Duration,
    /// A list of template strings.
    TextList,
    /// A list of integers.
    IntegerList,
    /// A template string, or a list of them.
    TextOrList,
    /// A table of `NAME = "template"`.
    TextMap,
    /// One of a few fixed words.
    Choice(&'static [&'static str]),
    /// A list of tables, each with these fields.
    TableList(&'static [FieldSpec]),
    /// Any TOML value (a table, a list, a string); strings inside are templates.
    Any,
}

impl FieldKind {
    /// How the kind is named in "expected ..." messages.
    pub fn describe(self) -> &'static str {
        match self {
            FieldKind::Text | FieldKind::Shell => "a string",
            FieldKind::Bool => "a boolean",
            FieldKind::Integer => "an integer",
            FieldKind::Duration => "a duration string such as \"30s\"",
            FieldKind::TextList => "a list of strings",
            FieldKind::IntegerList => "a list of integers",
            FieldKind::TextOrList => "a string or a list of strings",
            FieldKind::TextMap => "a table of strings",
            FieldKind::Choice(_) => "one of the allowed words",
            FieldKind::TableList(_) => "a list of tables",
            FieldKind::Any => "a value",
        }
    }
}

/// One field of a step type.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// The key in the plan file.
    pub name: &'static str,
    /// What it takes.
    pub kind: FieldKind,
    /// Must be present.
    pub required: bool,
    /// One line for humans (shown by editors through the JSON Schema).
    pub doc: &'static str,
}

impl FieldSpec {
    /// An optional field.
    pub const fn optional(name: &'static str, kind: FieldKind, doc: &'static str) -> Self {
        Self {
            name,
            kind,
            required: false,
            doc,
        }
    }

    /// A required field.
    pub const fn required(name: &'static str, kind: FieldKind, doc: &'static str) -> Self {
        Self {
            name,
            kind,
            required: true,
            doc,
        }
    }
}

/// Everything the engine must know about a step type before running it.
#[derive(Clone, Copy, Debug)]
pub struct StepSchema {
    /// The `type` value in plans (`shell`, `kube.drain`).
    pub name: &'static str,
    /// One line for humans.
    pub doc: &'static str,
    /// The type's own fields (the common ones are added by the engine).
    pub fields: &'static [FieldSpec],
    /// Exactly one of these fields must be set (empty: no such rule).
    pub exactly_one_of: &'static [&'static str],
    /// Whether an instance left in doubt by a crash may simply run again.
    pub idempotent: bool,
}

impl StepSchema {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}
