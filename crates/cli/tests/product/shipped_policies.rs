//! Every shipped policy passes its own cases (`policies/tests/`), through the same code as
//! `amends policy test`; and a wrong expectation is reported as a failure with a diff.

use amends_sources::policies::{report, test_dir};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn every_shipped_policy_passes_its_cases() {
    let results = test_dir(&root().join("policies/tests")).unwrap();
    assert!(results.len() >= 30, "only {} cases", results.len());
    let text = report(&results);
    assert!(results.iter().all(|r| r.passed()), "{text}");
    for policy in [
        "prorated",
        "uk-ofcom-automatic-compensation",
        "uk-ofgem-power-cuts",
        "us-ny-psc-outage-credit",
        "de-tkg-58",
        "days-of-service",
        "flat-per-account",
        "sla-tiers",
    ] {
        let n = results.iter().filter(|r| r.path.parent().is_some_and(|p| p.ends_with(policy))).count();
        assert!(n >= 3, "{policy} has {n} cases");
    }
}

#[test]
fn a_wrong_expectation_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let case = std::fs::read_to_string(
        root().join("policies/tests/uk-ofcom-automatic-compensation/delayed-start-worked-example.json"),
    )
    .unwrap();
    let policy = root().join("policies/uk-ofcom-automatic-compensation.toml");
    let mut case: serde_json::Value = serde_json::from_str(&case).unwrap();
    case["policy"] = serde_json::json!(policy.display().to_string());
    case["expected"]["total_minor"] = serde_json::json!(1249);
    std::fs::write(dir.path().join("wrong.json"), case.to_string()).unwrap();
    let results = test_dir(dir.path()).unwrap();
    assert!(!results[0].passed());
    let text = report(&results);
    assert!(text.contains("total_minor: expected 1249, got 1248"), "{text}");
    assert!(text.contains("2 x 6.24 = 12.48"), "{text}");
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
}
