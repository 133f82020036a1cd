//! MiniJinja, set up for plans: undefined names are errors, values interpolated into shell
//! commands are shell-quoted, and `raw` opts out on purpose.

use std::collections::BTreeSet;
use std::ops::Range;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

/// How interpolated values are written into the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quoting {
    /// As they are (instructions, hosts, paths, API fields).
    Plain,
    /// Shell-quoted, so that a value is always one word (`run`, `check`).
    Shell,
}

impl Quoting {
    fn template_name(self) -> &'static str {
        match self {
            Quoting::Plain => "field",
            Quoting::Shell => "command.sh",
        }
    }
}

/// A template or expression that failed to compile or render.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// What went wrong, in one line.
    pub message: String,
    /// Where in the template text, when known.
    pub range: Option<Range<usize>>,
    /// True when the problem is a name that is not defined.
    pub undefined: bool,
}

impl From<Error> for TemplateError {
    fn from(e: Error) -> Self {
        let message = match e.detail() {
            Some(detail) => format!("{}: {detail}", kind_text(e.kind())),
            None => kind_text(e.kind()).to_string(),
        };
        Self {
            message,
            range: e.range(),
            undefined: e.kind() == ErrorKind::UndefinedError,
        }
    }
}

fn kind_text(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::SyntaxError => "syntax error",
        ErrorKind::UndefinedError => "undefined value",
        ErrorKind::UnknownFilter => "unknown filter",
        ErrorKind::UnknownTest => "unknown test",
        ErrorKind::UnknownFunction => "unknown function",
        ErrorKind::InvalidOperation => "invalid operation",
        ErrorKind::BadSerialization => "value cannot be rendered",
        _ => "template error",
    }
}

/// The template environment plans are rendered with.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// Strict undefined names, shell quoting for `.sh` templates, the `raw` filter.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".sh") {
                AutoEscape::Custom("sh".into())
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            if matches!(state.auto_escape(), AutoEscape::Custom(name) if name == "sh")
                && !value.is_safe()
            {
                out.write_str(&shell_words(value)?)
                    .map_err(|_| Error::new(ErrorKind::WriteFailure, "could not write output"))
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_filter("raw", |value: Value| {
            Value::from_safe_string(plain_words(&value))
        });
        Self { env }
    }

    /// Renders `text` with `ctx`.
    ///
    /// # Errors
    /// [`TemplateError`] on a syntax error or an undefined name.
    pub fn render(
        &self,
        text: &str,
        quoting: Quoting,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        if !is_template(text) {
            return Ok(text.to_string());
        }
        Ok(self
            .env
            .render_named_str(quoting.template_name(), text, ctx.clone())?)
    }

    /// Evaluates a bare expression (`when`, `for_each`).
    ///
    /// # Errors
    /// [`TemplateError`] on a syntax error or an undefined name.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        let compiled = self.env.compile_expression_owned(expr.to_string())?;
        Ok(compiled.eval(ctx.clone())?)
    }

    /// The dotted names a template reads (`params.master`, `steps.a.outputs.b`, `item`).
    ///
    /// # Errors
    /// [`TemplateError`] when the template does not parse.
    pub fn template_names(
        &self,
        text: &str,
        quoting: Quoting,
    ) -> Result<BTreeSet<String>, TemplateError> {
        if !is_template(text) {
            return Ok(BTreeSet::new());
        }
        let tmpl = self
            .env
            .template_from_named_str(quoting.template_name(), text)?;
        let mut names = tmpl.undeclared_variables(true);
        if let Some(rewritten) = subscripts_as_attributes(text)
            && let Ok(t) = self
                .env
                .template_from_named_str(quoting.template_name(), &rewritten)
        {
            names.extend(t.undeclared_variables(true));
        }
        Ok(self.without_globals(names))
    }

    /// The dotted names an expression reads.
    ///
    /// # Errors
    /// [`TemplateError`] when the expression does not parse.
    pub fn expression_names(&self, expr: &str) -> Result<BTreeSet<String>, TemplateError> {
        let compiled = self.env.compile_expression_owned(expr.to_string())?;
        let mut names = compiled.undeclared_variables(true);
        if let Some(rewritten) = subscripts_as_attributes(expr)
            && let Ok(c) = self.env.compile_expression_owned(rewritten)
        {
            names.extend(c.undeclared_variables(true));
        }
        Ok(self.without_globals(names))
    }

    fn without_globals(&self, names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        let globals: BTreeSet<&str> = self.env.globals().map(|(n, _)| n).collect();
        names
            .into_iter()
            .filter(|n| !globals.contains(n.split('.').next().unwrap_or(n)))
            .collect()
    }
}

/// `x['name']` and `x["name"]` (an identifier in quotes) rewritten as `x.name`, so that the
/// names they read are known statically too; `None` when there is none.
fn subscripts_as_attributes(text: &str) -> Option<String> {
    static SUBSCRIPT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"([A-Za-z0-9_\])])\[\s*(?:'([A-Za-z_][A-Za-z0-9_]*)'|"([A-Za-z_][A-Za-z0-9_]*)")\s*\]"#,
        )
        .expect("a valid regex")
    });
    if !SUBSCRIPT.is_match(text) {
        return None;
    }
    let rewritten = SUBSCRIPT.replace_all(text, |c: &regex::Captures<'_>| {
        let key = c.get(2).or_else(|| c.get(3)).map_or("", |m| m.as_str());
        format!("{}.{key}", &c[1])
    });
    Some(rewritten.into_owned())
}

/// Whether `text` has any template syntax at all (plain strings skip the engine).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

// A list becomes several words, each quoted; anything else one quoted word.
fn shell_words(value: &Value) -> Result<String, Error> {
    let quote = |s: &str| {
        shlex::try_quote(s).map(|q| q.into_owned()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "a value with a NUL byte cannot go into a shell command",
            )
        })
    };
    if value.kind() == minijinja::value::ValueKind::Seq
        && let Ok(items) = value.try_iter()
    {
        return items
            .map(|v| quote(&v.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(|w| w.join(" "));
    }
    quote(&value.to_string())
}

fn plain_words(value: &Value) -> String {
    if value.kind() == minijinja::value::ValueKind::Seq
        && let Ok(items) = value.try_iter()
    {
        return items.map(|v| v.to_string()).collect::<Vec<_>>().join(" ");
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn shell_values_stay_one_argument() {
        let t = Templates::new();
        let ctx = context! { params => context! { node => "x; rm -rf /", name => "n1" } };
        let out = t
            .render(
                "drain {{ params.node }} {{ params.name }}",
                Quoting::Shell,
                &ctx,
            )
            .unwrap();
        assert_eq!(out, "drain 'x; rm -rf /' n1");
        let raw = t
            .render("echo {{ params.node | raw }}", Quoting::Shell, &ctx)
            .unwrap();
        assert_eq!(raw, "echo x; rm -rf /");
        let plain = t.render("{{ params.node }}", Quoting::Plain, &ctx).unwrap();
        assert_eq!(plain, "x; rm -rf /");
    }

    #[test]
    fn lists_become_quoted_words() {
        let t = Templates::new();
        let ctx = context! { params => context! { hosts => vec!["a b", "c"] } };
        assert_eq!(
            t.render("ping {{ params.hosts }}", Quoting::Shell, &ctx)
                .unwrap(),
            "ping 'a b' c"
        );
    }

    #[test]
    fn undefined_names_are_errors() {
        let t = Templates::new();
        let err = t
            .render(
                "{{ params.nope }}",
                Quoting::Plain,
                &context! { params => context! {} },
            )
            .unwrap_err();
        assert!(err.undefined, "{err}");
    }

    #[test]
    fn names_are_dotted_paths() {
        let t = Templates::new();
        let names = t
            .template_names("{{ params.a }} {{ steps.s.outputs.x }} {% for h in params.l %}{{ h }}{% endfor %} {{ item }}", Quoting::Shell)
            .unwrap();
        let names: Vec<_> = names.into_iter().collect();
        assert_eq!(names, ["item", "params.a", "params.l", "steps.s.outputs.x"]);
        let e = t
            .expression_names("params.ganeti and not run.failed")
            .unwrap();
        assert_eq!(
            e.into_iter().collect::<Vec<_>>(),
            ["params.ganeti", "run.failed"]
        );
    }
}
