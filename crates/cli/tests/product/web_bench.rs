//! Issue 20: `amends bench --web-only` runs end to end on a small book: the server, the
//! storm and the load generator in one process, every route measured and every request
//! answered. No figure is asserted (timings belong to the bench, not to tests).

use std::process::Command;

/// The stdout of `amends bench` with `args`, run in a fresh directory on the embedded
/// default, having succeeded.
fn bench(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_amends"))
        .arg("bench")
        .args(args)
        .arg("--dir")
        .arg(dir.path())
        .env_remove("AMENDS_DATABASE_URL")
        .output()
        .expect("amends bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn the_web_bench_drives_every_route_and_every_request_is_answered() {
    let stdout = bench(&["--web-only", "--customers", "300", "--web-seconds", "1", "--web-connections", "4"]);
    let routes = [
        "GET /health (the floor",
        "GET /status (the page",
        "(304)",
        "pages asked again",
        "each time another customer",
        "each time, no storm",
    ];
    for route in routes {
        let line =
            stdout.lines().find(|l| l.contains(route)).unwrap_or_else(|| panic!("{route} in {stdout}"));
        let failed: u64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert_eq!(failed, 0, "{line}");
        let requests: u64 = line.split_whitespace().rev().nth(6).unwrap().replace(',', "").parse().unwrap();
        assert!(requests > 0, "{line}");
        let storm = line.split_whitespace().rev().nth(1).unwrap();
        let calm = route.contains("floor") || route.contains("no storm");
        assert!(calm || storm.parse::<f64>().is_ok(), "each page in a storm: {line}");
    }
    let alone = stdout.lines().find(|l| l.contains("page built alone")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(alone.contains("1 pass(es) of 300 customers"), "every customer's page, once: {alone}");
    let queued = stdout.split("each storm queued ").nth(1).expect("the storms' line");
    let queued: u64 = queued.split_whitespace().next().unwrap().replace(',', "").parse().unwrap();
    assert!(queued >= 300, "every customer's acknowledgement, on one channel or more: {stdout}");
}

/// `--web-pages-alone`: the pages alone after the fan-outs, with no load generator: every
/// customer's page built once and answered, no route driven.
#[test]
fn the_web_bench_builds_pages_alone_for_counting_instructions() {
    let stdout = bench(&["--web-only", "--web-pages-alone", "--customers", "200"]);
    assert!(stdout.contains("200 customers, after 6 fan-outs"), "{stdout}");
    let alone =
        stdout.lines().find(|l| l.contains("page built alone,")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(alone.contains("1 pass(es) of 200 customers"), "every customer's page, once: {alone}");
    assert!(!stdout.contains("GET /"), "no route driven: {stdout}");
    let refused = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_amends"))
            .arg("bench")
            .args(args)
            .env_remove("AMENDS_DATABASE_URL")
            .output()
            .expect("amends bench runs");
        assert!(!out.status.success(), "{args:?} is refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    refused(&["--web-pages-alone"]);
    let scratch = tempfile::tempdir().unwrap();
    let scratch = scratch.path().to_str().unwrap();
    let none = refused(&["--web-only", "--web-pages-alone", "--customers", "0", "--dir", scratch]);
    assert!(none.contains("--web-only needs at least one customer"), "{none}");
    let file = tempfile::NamedTempFile::new().unwrap();
    let nowhere = file.path().join("under-a-file");
    let nowhere = nowhere.to_str().unwrap();
    let dir = refused(&["--web-only", "--web-pages-alone", "--customers", "5", "--dir", nowhere]);
    assert!(dir.contains(&format!("the bench's directory {nowhere}")), "names the directory: {dir}");
}
