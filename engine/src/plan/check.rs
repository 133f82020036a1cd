//! Cross-reference checks over a read plan: ids, `needs`, groups, cycles, `finally`,
//! `for_each`, and the names every template reads.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic, did_you_mean};
use crate::plan::model::{FieldValue, ParamType, Plan, StepSpec};
use crate::source::Spanned;
use crate::step::{FieldKind, StepRegistry};
use crate::template::{Quoting, TemplateError, Templates};

/// Every cross-reference problem of `plan`.
pub(crate) fn check_plan(plan: &Plan, registry: &StepRegistry) -> Diagnostics {
    let mut c = Checker {
        plan,
        registry,
        diags: Diagnostics::new(),
        templates: Templates::new(),
    };
    c.check_ids();
    c.check_step_groups();
    let deps = c.resolve_all_needs();
    c.check_finally(&deps);
    let acyclic = c.check_cycles(&deps);
    // With a cycle, what each step reaches is still known: `not_a_need` is checked anyway.
    let reach = Some(if acyclic {
        transitive(&deps)
    } else {
        reachable(&deps)
    });
    c.check_expressions(reach.as_deref());
    c.diags
}

/// For each step (by index), the steps it needs directly, with the `needs` entry that
/// brought each in (for labels).
pub(crate) type Deps = Vec<Vec<(usize, Range<usize>)>>;

struct Checker<'p> {
    plan: &'p Plan,
    registry: &'p StepRegistry,
    diags: Diagnostics,
    templates: Templates,
}

/// How a name in `needs` resolves: the steps it stands for.
pub(crate) fn resolve_need(
    plan: &Plan,
    name: &str,
    from_group: Option<&str>,
) -> Option<Vec<usize>> {
    if let Some(g) = from_group
        && let Some((i, _)) = plan.steps_in(Some(g)).find(|(_, s)| s.id.value == name)
    {
        return Some(vec![i]);
    }
    if let Some((i, _)) = plan.steps_in(None).find(|(_, s)| s.id.value == name) {
        return Some(vec![i]);
    }
    if plan.group(name).is_some() {
        return Some(plan.steps_in(Some(name)).map(|(i, _)| i).collect());
    }
    None
}

/// The display name of step `i`: `id`, or `group/id` inside a group.
pub(crate) fn step_label(plan: &Plan, i: usize) -> String {
    let s = &plan.steps[i];
    match &s.group {
        Some(g) => format!("{}/{}", g.value, s.id.value),
        None => s.id.value.clone(),
    }
}

/// Whether step `i` runs in the `finally` phase (itself or through its group).
pub(crate) fn is_finally(plan: &Plan, i: usize) -> bool {
    let s = &plan.steps[i];
    s.finally
        || s.group
            .as_ref()
            .and_then(|g| plan.group(&g.value))
            .is_some_and(|g| g.finally)
}

impl Checker<'_> {
    fn report(&mut self, d: PlanDiagnostic) {
        self.diags.push(d);
    }

    fn error(
        &mut self,
        code: Code,
        span: Range<usize>,
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        let d = PlanDiagnostic::new(code, &self.plan.source, message)
            .at(span, label)
            .maybe_help(help);
        self.report(d);
    }

    fn first_defined(&self, span: &Range<usize>) -> String {
        let lc = self.plan.source.line_column(span.start);
        format!("first defined at line {}, column {}", lc.line, lc.column)
    }

    fn check_ids(&mut self) {
        // Top-level steps and groups share one namespace; group members have their own.
        let mut seen: HashMap<(Option<String>, String), Range<usize>> = HashMap::new();
        let mut entries: Vec<(Option<String>, &Spanned<String>, &str)> = Vec::new();
        for g in &self.plan.groups {
            entries.push((None, &g.id, "group"));
        }
        for s in &self.plan.steps {
            entries.push((s.group.as_ref().map(|g| g.value.clone()), &s.id, "step"));
        }
        entries.sort_by_key(|(_, id, _)| id.span.start);
        for (scope, id, what) in entries {
            let key = (scope.clone(), id.value.clone());
            if let Some(first) = seen.get(&key) {
                let help = self.first_defined(first);
                let within = scope
                    .map(|g| format!(" in group `{g}`"))
                    .unwrap_or_default();
                self.error(
                    Code::DuplicateId,
                    id.span.clone(),
                    format!("the id `{}` is used twice{within}", id.value),
                    &format!("this {what} reuses it"),
                    Some(help),
                );
            } else {
                seen.insert(key, id.span.clone());
            }
        }
    }

    fn check_step_groups(&mut self) {
        let names: Vec<&str> = self
            .plan
            .groups
            .iter()
            .map(|g| g.id.value.as_str())
            .collect();
        for s in &self.plan.steps {
            let Some(g) = &s.group else { continue };
            if self.plan.group(&g.value).is_none() {
                let help = did_you_mean(&g.value, names.iter().copied())
                    .or_else(|| Some(format!("declare it with [[group]] id = \"{}\"", g.value)));
                self.error(
                    Code::UnknownGroup,
                    g.span.clone(),
                    format!("no group is named `{}`", g.value),
                    "unknown group",
                    help,
                );
            }
        }
    }

    fn need_candidates(&self, from_group: Option<&str>) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .plan
            .steps_in(None)
            .map(|(_, s)| s.id.value.as_str())
            .collect();
        names.extend(self.plan.groups.iter().map(|g| g.id.value.as_str()));
        if let Some(g) = from_group {
            names.extend(
                self.plan
                    .steps_in(Some(g))
                    .map(|(_, s)| s.id.value.as_str()),
            );
        }
        names
    }

    fn resolve_list(
        &mut self,
        me: &str,
        needs: &[Spanned<String>],
        from_group: Option<&str>,
        own_group: Option<&str>,
    ) -> Vec<(usize, Range<usize>)> {
        let mut out = Vec::new();
        for need in needs {
            // A sibling's local id wins over the group's own id ("need each other by local ids").
            let is_sibling = from_group.is_some()
                && self
                    .plan
                    .steps_in(from_group)
                    .any(|(_, s)| s.id.value == need.value);
            if own_group == Some(need.value.as_str()) && from_group.is_some() && !is_sibling {
                self.error(
                    Code::Cycle,
                    need.span.clone(),
                    format!("a step of group `{}` cannot need its own group", need.value),
                    "depends on itself",
                    Some("name the steps of the group it must wait for instead".into()),
                );
                continue;
            }
            match resolve_need(self.plan, &need.value, from_group) {
                Some(ids) => out.extend(ids.into_iter().map(|i| (i, need.span.clone()))),
                None => {
                    // Never suggest the step (or group) itself: that would be a cycle.
                    let candidates = self.need_candidates(from_group);
                    let help =
                        did_you_mean(&need.value, candidates.iter().copied().filter(|c| *c != me));
                    self.error(
                        Code::UnknownNeed,
                        need.span.clone(),
                        format!("`needs` names `{}`, which is no step or group", need.value),
                        "not a step or group",
                        help,
                    );
                }
            }
        }
        out
    }

    fn resolve_all_needs(&mut self) -> Deps {
        let mut group_deps: HashMap<String, Vec<(usize, Range<usize>)>> = HashMap::new();
        for g in &self.plan.groups {
            if g.needs.iter().any(|n| n.value == g.id.value) {
                let span = g
                    .needs
                    .iter()
                    .find(|n| n.value == g.id.value)
                    .map_or(g.span.clone(), |n| n.span.clone());
                self.error(
                    Code::Cycle,
                    span,
                    format!("`{}` depends on itself", g.id.value),
                    "depends on itself",
                    None,
                );
            }
            let needs: Vec<_> = g
                .needs
                .iter()
                .filter(|n| n.value != g.id.value)
                .cloned()
                .collect();
            let resolved = self.resolve_list(&g.id.value, &needs, None, None);
            group_deps.insert(g.id.value.clone(), resolved);
        }
        let mut deps = Vec::with_capacity(self.plan.steps.len());
        for s in &self.plan.steps {
            let group = s.group.as_ref().map(|g| g.value.as_str());
            let mut d = self.resolve_list(&s.id.value, &s.needs, group, group);
            if let Some(gd) = group.and_then(|g| group_deps.get(g)) {
                d.extend(gd.iter().cloned());
            }
            deps.push(d);
        }
        deps
    }

    fn check_finally(&mut self, deps: &Deps) {
        for (i, d) in deps.iter().enumerate() {
            if is_finally(self.plan, i) {
                continue;
            }
            for (j, span) in d {
                if is_finally(self.plan, *j) {
                    let label = step_label(self.plan, *j);
                    self.error(
                        Code::NeedsFinally,
                        span.clone(),
                        format!(
                            "`{}` needs `{label}`, which only runs after every other step",
                            step_label(self.plan, i)
                        ),
                        "a `finally` step",
                        Some("mark this step `finally = true` too, or drop the need".into()),
                    );
                }
            }
        }
    }

    /// Reports every cycle once, as its path; true when there is none.
    fn check_cycles(&mut self, deps: &Deps) -> bool {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = deps.len();
        let mut marks = vec![Mark::New; n];
        let mut found = Vec::new();
        for start in 0..n {
            if marks[start] != Mark::New {
                continue;
            }
            // Iterative DFS: (node, next edge index); `path` mirrors the open nodes.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::Open;
            while let Some((node, edge)) = stack.last().cloned() {
                if let Some((next, span)) = deps[node].get(edge) {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match marks[*next] {
                        Mark::New => {
                            marks[*next] = Mark::Open;
                            stack.push((*next, 0));
                        }
                        Mark::Open => {
                            let from = stack.iter().position(|(s, _)| s == next).unwrap_or(0);
                            let mut path: Vec<usize> =
                                stack[from..].iter().map(|(s, _)| *s).collect();
                            path.push(*next);
                            found.push((path, span.clone()));
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
        let acyclic = found.is_empty();
        for (path, span) in found {
            let names: Vec<String> = path.iter().map(|i| step_label(self.plan, *i)).collect();
            let (message, label) = if path.len() == 2 {
                (
                    format!("`{}` depends on itself: {}", names[0], names.join(" -> ")),
                    "depends on itself".to_string(),
                )
            } else {
                (
                    format!("dependency cycle: {}", names.join(" -> ")),
                    format!("closes the cycle {}", names.join(" -> ")),
                )
            };
            self.error(
                Code::Cycle,
                span,
                message,
                &label,
                Some("remove one of these `needs` to break the cycle".into()),
            );
        }
        acyclic
    }

    fn check_expressions(&mut self, reach: Option<&[BTreeSet<usize>]>) {
        for g in &self.plan.groups {
            let scope = Scope {
                step: None,
                group: Some(g.id.value.as_str()),
                has_item: g.for_each.is_some(),
                reach: None,
            };
            if let Some(w) = &g.when {
                self.check_expression(w, &scope);
            }
            if let Some(f) = &g.for_each {
                self.check_for_each(f);
            }
        }
        for (i, s) in self.plan.steps.iter().enumerate() {
            let group = s.group.as_ref().and_then(|g| self.plan.group(&g.value));
            let scope = Scope {
                step: Some(i),
                group: group.map(|g| g.id.value.as_str()),
                has_item: s.for_each.is_some() || group.is_some_and(|g| g.for_each.is_some()),
                reach: reach.map(|r| &r[i]),
            };
            if let Some(w) = &s.when {
                self.check_expression(w, &scope);
            }
            if let Some(f) = &s.for_each {
                self.check_for_each(f);
            }
            for (text, span, quoting) in template_fields(s, self.registry) {
                self.check_template(&text, span, quoting, &scope);
            }
        }
    }

    fn check_for_each(&mut self, expr: &Spanned<String>) {
        let names = match self.templates.expression_names(&expr.value) {
            Ok(n) => n,
            Err(e) => return self.template_syntax(&e, expr.span.clone(), "`for_each`"),
        };
        for name in &names {
            let mut parts = name.split('.');
            match (parts.next(), parts.next()) {
                (Some("params"), Some(p)) => match self.plan.params.get(p) {
                    None => self.unknown_param(p, name, expr.span.clone()),
                    Some(spec)
                        if spec.ty != ParamType::List
                            && expr.value.trim() == format!("params.{p}") =>
                    {
                        self.error(
                            Code::ForEachNotList,
                            expr.span.clone(),
                            format!(
                                "`for_each` needs a list, and parameter `{p}` is {} {}",
                                if spec.ty == ParamType::Integer {
                                    "an"
                                } else {
                                    "a"
                                },
                                spec.ty.name()
                            ),
                            "not a list",
                            Some(format!("declare it with type = \"list\" in [params.{p}]")),
                        );
                    }
                    Some(_) => {}
                },
                (Some("params"), None) => {}
                _ => self.error(
                    Code::ForEachNotList,
                    locate(&self.plan.source, expr.span.clone(), name),
                    format!("`for_each` reads `{name}`, which is not known before the run starts"),
                    "only parameters can be used here",
                    Some("build the list from parameters, e.g. for_each = \"params.nodes\"".into()),
                ),
            }
        }
    }

    fn check_expression(&mut self, expr: &Spanned<String>, scope: &Scope<'_>) {
        match self.templates.expression_names(&expr.value) {
            Ok(names) => {
                for name in names {
                    self.check_name(&name, expr.span.clone(), scope);
                }
            }
            Err(e) => self.template_syntax(&e, expr.span.clone(), "the expression"),
        }
    }

    fn check_template(
        &mut self,
        text: &str,
        span: Range<usize>,
        quoting: Quoting,
        scope: &Scope<'_>,
    ) {
        match self.templates.template_names(text, quoting) {
            Ok(names) => {
                for name in names {
                    self.check_name(&name, span.clone(), scope);
                }
            }
            Err(e) => self.template_syntax(&e, span, "the template"),
        }
    }

    fn template_syntax(&mut self, e: &TemplateError, span: Range<usize>, what: &str) {
        let at = match &e.range {
            Some(r) => inner_span(&self.plan.source, span, r.clone()),
            None => span,
        };
        self.error(
            Code::TemplateSyntax,
            at,
            format!("{what} does not parse: {}", e.message),
            "here",
            Some("templates use Jinja syntax: {{ params.NAME }}".into()),
        );
    }

    fn unknown_param(&mut self, p: &str, name: &str, span: Range<usize>) {
        let help = did_you_mean(p, self.plan.params.keys().map(String::as_str))
            .or_else(|| Some(format!("declare it with [params.{p}]")));
        let at = locate(&self.plan.source, span, name);
        self.error(
            Code::UnknownParam,
            at,
            format!("no parameter is named `{p}`"),
            "unknown parameter",
            help,
        );
    }

    fn check_name(&mut self, name: &str, span: Range<usize>, scope: &Scope<'_>) {
        let parts: Vec<&str> = name.split('.').collect();
        let at = locate(&self.plan.source, span.clone(), name);
        match parts[0] {
            "params" => {
                if let Some(p) = parts.get(1)
                    && !self.plan.params.contains_key(*p)
                {
                    self.unknown_param(p, name, span);
                }
            }
            "steps" => self.check_step_reference(&parts, at, scope),
            "item" | "index" if scope.has_item => {}
            "item" | "index" => self.error(
                Code::UnknownName,
                at,
                format!(
                    "`{}` is only defined in a step or group with `for_each`",
                    parts[0]
                ),
                "not in scope here",
                Some("add `for_each` to this step or its group".into()),
            ),
            "run" => match parts.get(1) {
                None | Some(&"id") | Some(&"failed") => {}
                Some(other) => self.error(
                    Code::UnknownName,
                    at,
                    format!("`run.{other}` is not defined"),
                    "unknown name",
                    Some("`run` has `id` and `failed`".into()),
                ),
            },
            other => {
                let help = did_you_mean(other, ["params", "steps", "item", "index", "run"])
                    .or_else(|| {
                        Some(
                            "templates can read `params`, `steps`, `item`, `index` and `run`"
                                .into(),
                        )
                    });
                self.error(
                    Code::UnknownName,
                    at,
                    format!("`{other}` is not defined"),
                    "unknown name",
                    help,
                );
            }
        }
    }

    fn check_step_reference(&mut self, parts: &[&str], at: Range<usize>, scope: &Scope<'_>) {
        let Some(id) = parts.get(1) else { return };
        let local = scope
            .group
            .and_then(|g| self.plan.steps_in(Some(g)).find(|(_, s)| s.id.value == *id));
        let found = local.or_else(|| self.plan.steps_in(None).find(|(_, s)| s.id.value == *id));
        let Some((j, target)) = found else {
            let mut names: Vec<&str> = self
                .plan
                .steps_in(None)
                .map(|(_, s)| s.id.value.as_str())
                .collect();
            if let Some(g) = scope.group {
                names.extend(
                    self.plan
                        .steps_in(Some(g))
                        .map(|(_, s)| s.id.value.as_str()),
                );
            }
            let help = did_you_mean(id, names);
            self.error(
                Code::UnknownStep,
                at,
                format!("no step is named `{id}`"),
                "unknown step",
                help,
            );
            return;
        };
        if let Some(i) = scope.step {
            let reachable = scope.reach.is_none_or(|r| r.contains(&j));
            if i == j || !reachable {
                let me = step_label(self.plan, i);
                let message = if i == j {
                    format!("step `{me}` reads its own outputs")
                } else {
                    format!("step `{me}` reads `steps.{id}` but does not need `{id}`")
                };
                self.error(
                    Code::NotANeed,
                    at.clone(),
                    message,
                    "not among this step's needs",
                    Some(format!("add \"{id}\" to `needs`, so that `{id}` has finished before this step starts")),
                );
                return;
            }
        } else {
            self.error(
                Code::NotANeed,
                at.clone(),
                format!("a group's `when` cannot read `steps.{id}`"),
                "not known when the group starts",
                Some("put the condition on the group's steps instead".into()),
            );
            return;
        }
        match parts.get(2) {
            None | Some(&"stdout") => {}
            Some(&"outputs") => {
                if let Some(out) = parts.get(3) {
                    let outputs = crate::step::step_outputs(target, self.registry);
                    if !outputs.iter().any(|c| c == out) {
                        let help = did_you_mean(out, outputs.iter().map(String::as_str)).or_else(|| {
                            Some(if outputs.is_empty() {
                                format!("`{id}` captures nothing: add capture = {{ {out} = '...' }} to it")
                            } else {
                                format!("`{id}` has the outputs: {}", outputs.join(", "))
                            })
                        });
                        self.error(
                            Code::UnknownOutput,
                            at,
                            format!("step `{id}` has no output `{out}`"),
                            "unknown output",
                            help,
                        );
                    }
                }
            }
            Some(other) => self.error(
                Code::UnknownName,
                at,
                format!("`steps.{id}.{other}` is not defined"),
                "unknown name",
                Some(format!(
                    "a step has `outputs` and `stdout`, e.g. steps.{id}.outputs.NAME"
                )),
            ),
        }
    }
}

struct Scope<'a> {
    step: Option<usize>,
    group: Option<&'a str>,
    has_item: bool,
    reach: Option<&'a BTreeSet<usize>>,
}

/// Every template string of a step's fields, with its span and quoting.
pub(crate) fn template_fields(
    s: &StepSpec,
    registry: &StepRegistry,
) -> Vec<(String, Range<usize>, Quoting)> {
    let schema = registry.get(&s.type_name.value).map(|t| *t.schema());
    let mut out = Vec::new();
    let mut push = |v: &FieldValue, quoting: Quoting| {
        for (text, span) in v.texts() {
            out.push((text.to_string(), span, quoting));
        }
    };
    for (name, v) in &s.fields {
        let kind = schema
            .as_ref()
            .and_then(|sc| sc.field(name))
            .map(|f| f.kind);
        push(
            v,
            if matches!(kind, Some(FieldKind::Shell)) {
                Quoting::Shell
            } else {
                Quoting::Plain
            },
        );
    }
    if let Some(c) = &s.check {
        push(c, Quoting::Shell);
    }
    for v in s.env.values() {
        push(v, Quoting::Plain);
    }
    if let Some(d) = &s.description {
        out.push((d.value.clone(), d.span.clone(), Quoting::Plain));
    }
    out
}

/// For each step, every step it needs directly or transitively (the graph has no cycle).
pub(crate) fn transitive(deps: &Deps) -> Vec<BTreeSet<usize>> {
    let n = deps.len();
    let mut memo: Vec<Option<BTreeSet<usize>>> = vec![None; n];
    fn visit(i: usize, deps: &Deps, memo: &mut Vec<Option<BTreeSet<usize>>>) -> BTreeSet<usize> {
        if let Some(done) = &memo[i] {
            return done.clone();
        }
        let mut all = BTreeSet::new();
        for (j, _) in &deps[i] {
            all.insert(*j);
            all.extend(visit(*j, deps, memo));
        }
        memo[i] = Some(all.clone());
        all
    }
    (0..n).map(|i| visit(i, deps, &mut memo)).collect()
}

/// Like [`transitive`], for a graph that may have cycles.
fn reachable(deps: &Deps) -> Vec<BTreeSet<usize>> {
    (0..deps.len())
        .map(|i| {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<usize> = deps[i].iter().map(|(j, _)| *j).collect();
            while let Some(j) = stack.pop() {
                if seen.insert(j) {
                    stack.extend(deps[j].iter().map(|(k, _)| *k));
                }
            }
            seen
        })
        .collect()
}

/// Narrows `span` (a TOML string) to where `name` is written in it, if it can be found.
fn locate(source: &crate::source::PlanSource, span: Range<usize>, name: &str) -> Range<usize> {
    let text = source.slice(&span);
    let mut candidates = vec![name.to_string()];
    let parts: Vec<&str> = name.split('.').collect();
    for n in (1..parts.len()).rev() {
        candidates.push(parts[..n].join("."));
    }
    // Prefer a whole-word occurrence inside `{{ }}` / `{% %}` (when the text has such blocks):
    // the same words may also appear in plain text before it, or as the start of a longer name.
    let blocks = text.contains("{{") || text.contains("{%");
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let in_block = |pos: usize| {
        let before = &text[..pos];
        let open = before.rfind("{{").max(before.rfind("{%"));
        let close = before.rfind("}}").max(before.rfind("%}"));
        open.is_some() && open > close
    };
    for c in &candidates {
        let mut first = None;
        for (pos, _) in text.match_indices(c.as_str()) {
            first.get_or_insert(pos);
            let whole = !text[pos + c.len()..].starts_with(word)
                && !text[..pos].ends_with(|ch: char| word(ch) || ch == '.');
            if whole && (!blocks || in_block(pos)) {
                return span.start + pos..span.start + pos + c.len();
            }
        }
        if let Some(pos) = first {
            return span.start + pos..span.start + pos + c.len();
        }
    }
    span
}

/// Maps a range inside a string's value to the source, assuming no escapes before it.
fn inner_span(
    source: &crate::source::PlanSource,
    span: Range<usize>,
    inner: Range<usize>,
) -> Range<usize> {
    let text = source.slice(&span);
    let mut open = if text.starts_with("\"\"\"") || text.starts_with("'''") {
        3
    } else {
        1
    };
    if open == 3 && text[3..].starts_with('\n') {
        open += 1;
    }
    let start = (span.start + open + inner.start).min(span.end);
    let end = (span.start + open + inner.end).clamp(start, span.end);
    if start == end { span } else { start..end }
}

/// The steps each step needs directly (group needs included), for a plan that passed
/// validation.
pub(crate) fn step_deps(plan: &Plan) -> Vec<Vec<usize>> {
    let group_needs = |g: &str| -> Vec<usize> {
        plan.group(g)
            .map(|g| {
                g.needs
                    .iter()
                    .filter_map(|n| resolve_need(plan, &n.value, None))
                    .flatten()
                    .collect()
            })
            .unwrap_or_default()
    };
    plan.steps
        .iter()
        .map(|s| {
            let group = s.group.as_ref().map(|g| g.value.as_str());
            let mut d: Vec<usize> = s
                .needs
                .iter()
                .filter_map(|n| resolve_need(plan, &n.value, group))
                .flatten()
                .collect();
            if let Some(g) = group {
                d.extend(group_needs(g));
            }
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect()
}
