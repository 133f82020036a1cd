//! docs/plan-format.md documents every step type and every field the registry knows.

#[test]
fn plan_format_doc_names_every_step_type_and_field() {
    let doc = include_str!("../../docs/plan-format.md");
    let mut missing = Vec::new();
    for schema in rok_plan_steps::builtin().schemas() {
        let heading = format!("### `{}`", schema.name);
        let Some(start) = doc.find(&heading) else {
            missing.push(format!("step type `{}`", schema.name));
            continue;
        };
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        for field in schema.fields {
            if !section.contains(&format!("`{}`", field.name)) {
                missing.push(format!("`{}` of `{}`", field.name, schema.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/plan-format.md does not document: {}",
        missing.join(", ")
    );
}
