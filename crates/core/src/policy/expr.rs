//! Conditions in policies are written in CEL, the Common Expression Language: a small,
//! well-specified, side-effect-free language built for exactly this (policy conditions over
//! structured data), with a maintained Rust implementation.
//!
//! CEL has no loops and no recursion. Its only iteration, the comprehension macros, is
//! refused here (facts hold no lists to iterate anyway), so every expression runs in time
//! linear in its length, and its length is bounded.

use jiff::Timestamp;
use std::sync::{Arc, OnceLock};

pub const EXPRESSION_LEN_MAX: usize = 2_000;
const COMPREHENSIONS: [&str; 5] = ["all", "exists", "exists_one", "map", "filter"];

/// A compiled CEL expression and its source.
#[derive(Clone)]
pub struct Expr {
    pub source: String,
    program: Arc<cel::Program>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for Expr {}

/// A compile error, with the line and column inside the expression (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The standard environment, built once: building it per evaluation costs microseconds.
fn env() -> Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

/// A fresh evaluation context over the shared standard environment.
pub fn context<'a>() -> cel::Context<'a, 'a> {
    cel::Context::with_env(env())
}

fn at_start(message: String) -> ExprError {
    ExprError { line: 1, column: 1, message }
}

impl Expr {
    /// Compiles `source`, which may read only the variables in `allowed`.
    pub fn compile(source: &str, allowed: &[&str]) -> Result<Expr, ExprError> {
        if source.len() > EXPRESSION_LEN_MAX {
            return Err(at_start(format!("expression longer than {EXPRESSION_LEN_MAX} characters")));
        }
        if let Some(name) = comprehension_in(source) {
            return Err(at_start(format!(
                "the comprehension macro `{name}` is not allowed in policies (facts hold no lists)"
            )));
        }
        let program = cel::Program::compile(source).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map(|e| e.pos).unwrap_or((1, 1));
            ExprError {
                line: line.max(1) as usize,
                column: column.max(0) as usize + 1,
                message: first.map(|e| e.msg.clone()).unwrap_or_else(|| "does not parse".into()),
            }
        })?;
        let references = program.references();
        let mut unknown: Vec<&str> =
            references.variables().into_iter().filter(|v| !allowed.contains(v)).collect();
        unknown.sort_unstable();
        if let Some(name) = unknown.first() {
            return Err(at_start(format!(
                "unknown variable `{name}`; here an expression may read {}",
                allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" and ")
            )));
        }
        Ok(Expr { source: source.to_string(), program: Arc::new(program) })
    }

    pub fn eval_bool(&self, ctx: &cel::Context<'_, '_>) -> Result<bool, String> {
        match self.program.execute(ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("`{}` gave {other:?}, not true or false", self.source)),
            Err(e) => Err(format!("`{}` failed: {e}", self.source)),
        }
    }

    /// A whole number.
    pub fn eval_int(&self, ctx: &cel::Context<'_, '_>) -> Result<i64, String> {
        match self.program.execute(ctx) {
            Ok(cel::Value::Int(n)) => Ok(n),
            Ok(cel::Value::UInt(n)) => {
                i64::try_from(n).map_err(|_| format!("`{}` gave {n}, too large", self.source))
            }
            Ok(other) => Err(format!("`{}` gave {other:?}, not a whole number", self.source)),
            Err(e) => Err(format!("`{}` failed: {e}", self.source)),
        }
    }

    /// An instant: a CEL timestamp, or text in RFC 3339.
    pub fn eval_timestamp(&self, ctx: &cel::Context<'_, '_>) -> Result<Timestamp, String> {
        let value = self.program.execute(ctx).map_err(|e| format!("`{}` failed: {e}", self.source))?;
        match value {
            cel::Value::Timestamp(t) => {
                Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).map_err(|e| e.to_string())
            }
            cel::Value::String(s) => {
                s.parse().map_err(|_| format!("`{}` gave {s:?}, not an RFC 3339 instant", self.source))
            }
            other => Err(format!("`{}` gave {other:?}, not a timestamp", self.source)),
        }
    }
}

/// The first comprehension macro called in `source` (`x.map(`...), if any.
fn comprehension_in(source: &str) -> Option<&'static str> {
    let bytes = source.as_bytes();
    for (i, _) in source.match_indices('.') {
        let rest = &source[i + 1..];
        for name in COMPREHENSIONS {
            if let Some(after) = rest.strip_prefix(name)
                && after.trim_start().starts_with('(')
                && !bytes.get(i + 1 + name.len()).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                return Some(name);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_the_facts() {
        let e = Expr::compile(
            r#"customer.segment == "residential" && event.duration_minutes >= 60"#,
            &["customer", "event"],
        )
        .unwrap();
        let mut ctx = context();
        ctx.add_variable("customer", serde_json::json!({"segment": "residential"})).unwrap();
        ctx.add_variable("event", serde_json::json!({"duration_minutes": 90})).unwrap();
        assert!(e.eval_bool(&ctx).unwrap());
    }

    #[test]
    fn timestamps_come_back_exact() {
        let e = Expr::compile(r#"timestamp(event.at) + duration("24h")"#, &["event"]).unwrap();
        let mut ctx = context();
        ctx.add_variable("event", serde_json::json!({"at": "2025-01-01T10:00:00Z"})).unwrap();
        assert_eq!(e.eval_timestamp(&ctx).unwrap(), "2025-01-02T10:00:00Z".parse().unwrap());
    }

    #[test]
    fn bad_expressions_are_refused_with_a_position() {
        let err = Expr::compile("customer.segment == \n (\"x\"", &["customer"]).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("missing ')'"), "{err:?}");
        let err = Expr::compile("custmer.segment == \"x\"", &["customer"]).unwrap_err();
        assert!(err.message.contains("unknown variable `custmer`"), "{err:?}");
        let err = Expr::compile("[1, 2].map(x, x * 2) == [2, 4]", &["customer"]).unwrap_err();
        assert!(err.message.contains("`map`"), "{err:?}");
        assert!(Expr::compile(&"1 + ".repeat(1000), &[]).unwrap_err().message.contains("longer"));
    }

    /// The table of docs/policies.md, section 4 ("Dates and times in expressions"): which
    /// functions count from 0 is a trap a policy author must be told of exactly.
    #[test]
    fn cel_date_functions_read_as_documented() {
        let rows = [
            ("getFullYear(customer.timezone)", 2026),
            ("getMonth(customer.timezone)", 1),
            ("getDate(customer.timezone)", 14),
            ("getDayOfMonth(customer.timezone)", 13),
            ("getDayOfYear(customer.timezone)", 44),
            ("getDayOfWeek(customer.timezone)", 6),
            ("getHours(customer.timezone)", 4),
            ("getMinutes(customer.timezone)", 30),
            ("getSeconds(customer.timezone)", 5),
            ("getHours()", 9),
        ];
        let mut ctx = context();
        ctx.add_variable("customer", serde_json::json!({"timezone": "America/New_York"})).unwrap();
        ctx.add_variable("event", serde_json::json!({"start": "2026-02-14T09:30:05Z"})).unwrap();
        for (function, value) in rows {
            let source = format!("timestamp(event.start).{function} == {value}");
            let e = Expr::compile(&source, &["customer", "event"]).unwrap();
            assert_eq!(e.eval_bool(&ctx), Ok(true), "{source}");
        }
    }

    #[test]
    fn a_runtime_type_error_is_an_error_not_false() {
        let e = Expr::compile("event.duration_minutes > \"x\"", &["event"]).unwrap();
        let mut ctx = context();
        ctx.add_variable("event", serde_json::json!({"duration_minutes": 1})).unwrap();
        assert!(e.eval_bool(&ctx).is_err());
    }
}
