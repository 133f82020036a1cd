//! A JSON Schema of plan files, for editors (Taplo / Even Better TOML), built from the same
//! key lists and step schemas that validation uses.

use serde_json::{Map, Value, json};

use crate::plan::{
    COMMON_STEP_KEYS, DEFAULTS_KEYS, GROUP_KEYS, PARAM_KEYS, PLAN_KEYS, RETRY_KEYS, TOP_KEYS,
};
use crate::step::{FieldKind, FieldSpec, StepRegistry};

const DURATION_PATTERN: &str = r"^(([0-9]+(ms|s|m|h|d))+|.*\{\{.*)$";
const ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]*$";

fn kind_schema(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Text | FieldKind::Shell => json!({ "type": "string" }),
        // A string only as a template (`"{{ params.allow }}"`), as validation accepts.
        FieldKind::Bool => {
            json!({ "anyOf": [{ "type": "boolean" }, { "$ref": "#/definitions/template" }] })
        }
        FieldKind::Integer => {
            json!({ "anyOf": [{ "type": "integer" }, { "$ref": "#/definitions/template" }] })
        }
        FieldKind::Duration => json!({ "$ref": "#/definitions/duration" }),
        FieldKind::TextList => json!({ "type": "array", "items": { "type": "string" } }),
        FieldKind::IntegerList => json!({ "type": "array", "items": { "type": "integer" } }),
        FieldKind::TextOrList => {
            json!({ "type": ["string", "array"], "items": { "type": "string" } })
        }
        FieldKind::TextMap => {
            json!({ "type": "object", "additionalProperties": { "type": "string" } })
        }
        FieldKind::Choice(c) => json!({ "type": "string", "enum": c }),
        FieldKind::TableList(fields) => json!({ "type": "array", "items": table_schema(fields) }),
        FieldKind::Any => json!({}),
    }
}

fn table_schema(fields: &[FieldSpec]) -> Value {
    let mut props = Map::new();
    for f in fields {
        let mut s = kind_schema(f.kind);
        s["description"] = f.doc.into();
        props.insert(f.name.to_string(), s);
    }
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({ "type": "object", "additionalProperties": false, "properties": props, "required": required })
}

fn common_step_properties() -> Map<String, Value> {
    let described = |s: Value, d: &str| {
        let mut s = s;
        s["description"] = d.into();
        s
    };
    let mut p = Map::new();
    for key in COMMON_STEP_KEYS {
        let s = match *key {
            "id" => described(
                json!({ "type": "string", "pattern": ID_PATTERN }),
                "Unique within the plan (or its group).",
            ),
            "type" => described(json!({ "type": "string" }), "The step type."),
            "description" => described(json!({ "type": "string" }), "One line for humans."),
            "needs" => described(
                json!({ "type": "array", "items": { "type": "string" } }),
                "Steps or groups that must finish first.",
            ),
            "group" => described(
                json!({ "type": "string" }),
                "The group this step belongs to.",
            ),
            "when" => described(
                json!({ "type": "string" }),
                "An expression; false means the step is skipped.",
            ),
            "for_each" => described(
                json!({ "type": "string" }),
                "An expression giving a list; one instance per element.",
            ),
            "max_parallel" => described(
                json!({ "type": "integer", "minimum": 1 }),
                "With for_each: instances in progress at once.",
            ),
            "timeout" => described(
                json!({ "$ref": "#/definitions/duration" }),
                "Each attempt fails when it passes.",
            ),
            "retry" => json!({ "$ref": "#/definitions/retry" }),
            "on_failure" => json!({ "$ref": "#/definitions/on_failure" }),
            "idempotent" => described(
                json!({ "type": "boolean" }),
                "Safe to run again if a crash left it unfinished.",
            ),
            "check" => described(
                json!({ "type": "string" }),
                "A command that exits 0 when the effect is already in place.",
            ),
            "capture" => described(
                json!({ "type": "object", "additionalProperties": { "type": "string" } }),
                "Outputs: NAME = 'regex with one group' over stdout.",
            ),
            "env" => described(
                json!({ "type": "object", "additionalProperties": { "type": "string" } }),
                "Extra environment variables.",
            ),
            "finally" => described(
                json!({ "type": "boolean" }),
                "Run after every other step, whether the run failed or not.",
            ),
            _ => json!({}),
        };
        p.insert(key.to_string(), s);
    }
    p
}

/// The JSON Schema of plan files for the step types of `registry`.
pub fn plan_schema(registry: &StepRegistry) -> Value {
    let mut variants = Vec::new();
    let mut definitions = Map::new();
    for schema in registry.schemas() {
        let mut props = common_step_properties();
        props.insert(
            "type".into(),
            json!({ "const": schema.name, "description": schema.doc }),
        );
        for f in schema.fields {
            let mut s = kind_schema(f.kind);
            s["description"] = f.doc.into();
            props.insert(f.name.to_string(), s);
        }
        let mut required = vec!["id", "type"];
        required.extend(schema.fields.iter().filter(|f| f.required).map(|f| f.name));
        let mut variant = json!({
            "type": "object",
            "description": schema.doc,
            "additionalProperties": false,
            "properties": props,
            "required": required,
        });
        if !schema.exactly_one_of.is_empty() {
            let one: Vec<Value> = schema
                .exactly_one_of
                .iter()
                .map(|k| json!({ "required": [k] }))
                .collect();
            variant["oneOf"] = one.into();
        }
        let def = format!("step_{}", schema.name.replace('.', "_"));
        definitions.insert(def.clone(), variant);
        variants.push(json!({ "$ref": format!("#/definitions/{def}") }));
    }
    let names: Vec<&str> = registry.names().collect();
    definitions.insert(
        "step".into(),
        json!({
            "type": "object",
            "required": ["id", "type"],
            "properties": { "type": { "type": "string", "enum": names } },
            "oneOf": variants,
        }),
    );
    definitions.insert("duration".into(), json!({ "type": "string", "pattern": DURATION_PATTERN, "description": "e.g. \"30s\", \"10m\", \"1h30m\"" }));
    definitions.insert(
        "template".into(),
        json!({ "type": "string", "pattern": r"\{\{|\{%", "description": "a template, e.g. \"{{ params.x }}\"" }),
    );
    definitions.insert(
        "on_failure".into(),
        json!({ "type": "string", "enum": ["abort", "continue", "ignore"] }),
    );
    definitions.insert("retry".into(), json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["attempts"],
        "properties": keyed(RETRY_KEYS, |k| match k {
            "attempts" => json!({ "type": "integer", "minimum": 1, "description": "Tries in all." }),
            "backoff" => json!({ "type": "number", "minimum": 1.0 }),
            _ => json!({ "$ref": "#/definitions/duration" }),
        }),
    }));
    definitions.insert("param".into(), json!({
        "type": "object",
        "additionalProperties": false,
        "properties": keyed(PARAM_KEYS, |k| match k {
            "type" => json!({ "type": "string", "enum": ["string", "integer", "boolean", "list", "duration"] }),
            "secret" => json!({ "type": "boolean" }),
            "choices" => json!({ "type": "array", "items": { "type": "string" } }),
            "default" => json!({}),
            _ => json!({ "type": "string" }),
        }),
    }));
    definitions.insert(
        "group".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["id"],
            "properties": keyed(GROUP_KEYS, |k| match k {
                "id" => json!({ "type": "string", "pattern": ID_PATTERN }),
                "needs" => json!({ "type": "array", "items": { "type": "string" } }),
                "max_parallel" => json!({ "type": "integer", "minimum": 1 }),
                "max_failures" => json!({ "type": "integer", "minimum": 0 }),
                "finally" => json!({ "type": "boolean" }),
                _ => json!({ "type": "string" }),
            }),
        }),
    );
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://rok-plan.invalid/schema/plan.json",
        "title": "rok-plan plan file",
        "type": "object",
        "additionalProperties": false,
        "required": ["plan"],
        "properties": keyed(TOP_KEYS, |k| match k {
            "plan" => json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name"],
                "properties": keyed(PLAN_KEYS, |k| match k {
                    "name" => json!({ "type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$" }),
                    _ => json!({ "type": "string" }),
                }),
            }),
            "params" => json!({ "type": "object", "additionalProperties": { "$ref": "#/definitions/param" } }),
            "defaults" => json!({
                "type": "object",
                "additionalProperties": false,
                "properties": keyed(DEFAULTS_KEYS, |k| match k {
                    "timeout" => json!({ "$ref": "#/definitions/duration" }),
                    "retry" => json!({ "$ref": "#/definitions/retry" }),
                    "on_failure" => json!({ "$ref": "#/definitions/on_failure" }),
                    _ => json!({ "type": "string" }),
                }),
            }),
            "group" => json!({ "type": "array", "items": { "$ref": "#/definitions/group" } }),
            _ => json!({ "type": "array", "items": { "$ref": "#/definitions/step" } }),
        }),
        "definitions": definitions,
    })
}

fn keyed(keys: &[&str], f: impl Fn(&str) -> Value) -> Map<String, Value> {
    keys.iter().map(|k| (k.to_string(), f(k))).collect()
}
