//! `amends policy eval` and `amends policy test`: run the policy engine over files, so a
//! provider can check a policy the way they test code.
//!
//! A test case is a JSON file:
//!
//! ```json
//! {"description": "optional", "source": "optional",
//!  "policy": "../../prorated.toml",
//!  "facts": {"customer": {...}, "events": [...]},
//!  "expected": {"total_minor": 100, "on_request_minor": 0,
//!               "lines": [{"rule": "prorated", "amount_minor": 100}]}}
//! ```
//!
//! `policy` is relative to the case file. `on_request_minor` and `lines` are optional; when
//! given they are checked too.

use amends_core::policy::{Evaluation, Facts, Policy, evaluate};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Bounds on what `policy test` reads: test cases, not data dumps.
pub const CASE_BYTES_MAX: u64 = 4 << 20;
pub const CASES_MAX: usize = 10_000;

/// Reads, checks and compiles a policy file.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let text = read_bounded(path, amends_core::policy::model::POLICY_BYTES_MAX as u64)?;
    Ok(Policy::from_toml(&path.display().to_string(), &text)?)
}

fn read_bounded(path: &Path, max: u64) -> Result<String> {
    let size = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if size > max {
        bail!("{}: {size} bytes; at most {max}", path.display());
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `amends policy eval`: the evaluation as JSON.
pub fn eval(policy: &Path, facts: &Path) -> Result<Evaluation> {
    let policy = load_policy(policy)?;
    let text = read_bounded(facts, CASE_BYTES_MAX)?;
    let facts = Facts::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", facts.display()))?;
    Ok(evaluate(&policy, &facts)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    policy: PathBuf,
    facts: serde_json::Value,
    expected: Expected,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Expected {
    total_minor: i64,
    on_request_minor: Option<i64>,
    lines: Option<Vec<ExpectedLine>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExpectedLine {
    rule: String,
    amount_minor: i64,
    automatic: Option<bool>,
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub path: PathBuf,
    pub description: Option<String>,
    /// Empty when the case passed; else what differs, or why it could not run.
    pub problems: Vec<String>,
    pub evaluation: Option<Evaluation>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Every `*.json` file under `dir`, recursively, in a stable order.
fn case_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
            if out.len() > CASES_MAX {
                bail!("{}: more than {CASES_MAX} cases", dir.display());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every case under `dir`. Policies are compiled once per file.
pub fn test_dir(dir: &Path) -> Result<Vec<CaseResult>> {
    let mut policies: BTreeMap<PathBuf, Result<Policy, String>> = BTreeMap::new();
    let files = case_files(dir)?;
    if files.is_empty() {
        bail!("{}: no *.json cases", dir.display());
    }
    Ok(files.into_iter().map(|path| run_case(&path, &mut policies)).collect())
}

fn run_case(path: &Path, policies: &mut BTreeMap<PathBuf, Result<Policy, String>>) -> CaseResult {
    let mut result =
        CaseResult { path: path.to_path_buf(), description: None, problems: Vec::new(), evaluation: None };
    let case: Case = match read_bounded(path, CASE_BYTES_MAX).and_then(|t| {
        serde_json::from_str(&t).with_context(|| format!("{}: not a test case", path.display()))
    }) {
        Ok(c) => c,
        Err(e) => {
            result.problems.push(format!("{e:#}"));
            return result;
        }
    };
    result.description = case.description.clone();
    let policy_path = path.parent().unwrap_or(Path::new(".")).join(&case.policy);
    let policy = policies
        .entry(policy_path.clone())
        .or_insert_with(|| load_policy(&policy_path).map_err(|e| format!("{e:#}")));
    let policy = match policy {
        Ok(p) => p,
        Err(e) => {
            result.problems.push(e.clone());
            return result;
        }
    };
    let evaluation = Facts::from_json(&case.facts.to_string())
        .map_err(|e| e.to_string())
        .and_then(|facts| evaluate(policy, &facts).map_err(|e| e.to_string()));
    match evaluation {
        Ok(ev) => {
            result.problems = compare(&case.expected, &ev);
            result.evaluation = Some(ev);
        }
        Err(e) => result.problems.push(e),
    }
    result
}

fn compare(expected: &Expected, got: &Evaluation) -> Vec<String> {
    let mut problems = Vec::new();
    if expected.total_minor != got.total_minor {
        problems.push(format!("total_minor: expected {}, got {}", expected.total_minor, got.total_minor));
    }
    if let Some(want) = expected.on_request_minor
        && want != got.on_request_minor
    {
        problems.push(format!("on_request_minor: expected {want}, got {}", got.on_request_minor));
    }
    if let Some(lines) = &expected.lines {
        if lines.len() != got.lines.len() {
            problems.push(format!("lines: expected {}, got {}", lines.len(), got.lines.len()));
        }
        for (i, (want, line)) in lines.iter().zip(&got.lines).enumerate() {
            if want.rule != *line.rule || want.amount_minor != line.amount_minor {
                problems.push(format!(
                    "lines[{i}]: expected {} {}, got {} {}",
                    want.rule, want.amount_minor, line.rule, line.amount_minor
                ));
            }
            if let Some(automatic) = want.automatic.filter(|a| *a != line.automatic) {
                problems.push(format!("lines[{i}].automatic: expected {automatic}, got {}", line.automatic));
            }
        }
    }
    problems
}

/// The report `policy test` prints: one line per case, and for a failure what differs and
/// every line the engine produced, with its explanation.
pub fn report(results: &[CaseResult]) -> String {
    let mut out = String::new();
    for r in results {
        let status = if r.passed() { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "{status} {}", r.path.display());
        if r.passed() {
            continue;
        }
        if let Some(d) = &r.description {
            let _ = writeln!(out, "     case: {d}");
        }
        for p in &r.problems {
            let _ = writeln!(out, "     - {p}");
        }
        if let Some(ev) = &r.evaluation {
            let _ = writeln!(out, "     got {} lines:", ev.lines.len());
            for line in &ev.lines {
                let how = if line.automatic { "automatic" } else { "on request" };
                let _ = writeln!(
                    out,
                    "       {} {} ({how}): {}",
                    line.rule,
                    line.amount_minor,
                    line.explanation()
                );
            }
            for note in &ev.notes {
                let _ = writeln!(out, "       note: {note}");
            }
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(out, "{} passed, {failed} failed", results.len() - failed);
    out
}
