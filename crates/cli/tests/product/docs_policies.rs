//! docs/policies.md says every output it shows is pasted from a run: this test is that
//! run (issue 17, item 18). It reads the document in order and does what it says:
//!
//! - `<!-- file: NAME -->` on the line before a fenced block saves the block as `NAME`;
//! - a comment `<!-- file: NAME` ... `-->` over several lines saves a file the text
//!   describes without showing in full (`recent.json`, `busy.json`...);
//! - `<!-- edit: PATH: OLD => NEW -->` changes a file as the text says it was changed;
//! - a fenced block whose first line is `$ amends ...` runs that command and compares what
//!   it printed (standard output, then standard error) with the rest of the block, where a
//!   line `...` stands for any number of lines.
//!
//! Each runs in one fresh directory holding a copy of the repository's `policies/`. With
//! `AMENDS_UPDATE_DOCS=1` the blocks without `...` are rewritten from the run instead.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// One thing the document does, with where its block sits (lines, 0-based, exclusive end).
enum Step {
    Save { name: String, text: String },
    Edit { path: String, old: String, new: String },
    Run { command: String, expected: Vec<String>, body: std::ops::Range<usize> },
}

fn steps(doc: &str) -> Vec<Step> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut save_next: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix("<!-- file: ") {
            match rest.strip_suffix("-->") {
                Some(name) => save_next = Some(name.trim().to_string()),
                None => {
                    let end =
                        (i + 1..lines.len()).find(|&j| lines[j].trim() == "-->").expect("a closed comment");
                    let text = lines[i + 1..end].join("\n") + "\n";
                    out.push(Step::Save { name: rest.trim().to_string(), text });
                    i = end;
                }
            }
        } else if let Some(rest) = line.strip_prefix("<!-- edit: ") {
            let rest = rest.strip_suffix("-->").expect("an edit on one line").trim();
            let (path, change) = rest.split_once(": ").expect("PATH: OLD => NEW");
            let (old, new) = change.split_once(" => ").expect("OLD => NEW");
            out.push(Step::Edit { path: path.into(), old: old.into(), new: new.into() });
        } else if line.starts_with("```") {
            let end = (i + 1..lines.len()).find(|&j| lines[j].starts_with("```")).expect("a closed fence");
            let block = &lines[i + 1..end];
            if let Some(name) = save_next.take() {
                out.push(Step::Save { name, text: block.join("\n") + "\n" });
            } else if let Some(command) = block.first().and_then(|l| l.strip_prefix("$ amends ")) {
                out.push(Step::Run {
                    command: format!("amends {command}"),
                    expected: block[1..].iter().map(|l| l.to_string()).collect(),
                    body: i + 2..end,
                });
            }
            i = end;
        }
        i += 1;
    }
    out
}

/// `expected` with `...` standing for any run of lines.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.first().is_some_and(|a| a == first) && matches(rest, &actual[1..]),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_output_docs_policies_shows_is_what_the_binary_prints() {
    let path = repo().join("docs/policies.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let steps = steps(&doc);
    let runs = steps.iter().filter(|s| matches!(s, Step::Run { .. })).count();
    assert!(runs >= 7, "docs/policies.md shows more runs than {runs}");

    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("policies"), &dir.path().join("policies"));
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_amends"), bin.join("amends")).unwrap();
    let search = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let update = std::env::var("AMENDS_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut lines: Vec<String> = doc.lines().map(str::to_string).collect();
    let mut rewrites = Vec::new();
    let mut wrong = Vec::new();
    for step in steps {
        match step {
            Step::Save { name, text } => {
                let file = dir.path().join(&name);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, text).unwrap();
            }
            Step::Edit { path, old, new } => {
                let file = dir.path().join(&path);
                let text = std::fs::read_to_string(&file).unwrap();
                assert!(text.contains(&old), "{path} has no {old:?} to change");
                std::fs::write(file, text.replacen(&old, &new, 1)).unwrap();
            }
            Step::Run { command, expected, body } => {
                let mut sh = Command::new("sh");
                sh.arg("-c").arg(&command).current_dir(dir.path()).env("PATH", &search);
                for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AMENDS_")) {
                    sh.env_remove(key);
                }
                let out = sh.output().unwrap();
                let printed =
                    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
                let actual: Vec<&str> = printed.lines().collect();
                if matches(&expected, &actual) {
                    continue;
                }
                if update && !expected.iter().any(|l| l == "...") {
                    rewrites.push((body, actual.iter().map(|l| l.to_string()).collect::<Vec<_>>()));
                } else {
                    wrong.push(format!(
                        "`{command}` printed:\n{printed}\nthe document shows:\n{}",
                        expected.join("\n")
                    ));
                }
            }
        }
    }
    if !rewrites.is_empty() {
        for (body, actual) in rewrites.into_iter().rev() {
            lines.splice(body, actual);
        }
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn an_elision_stands_for_any_lines_and_nothing_else() {
    let e = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(matches(&e(&["a", "...", "d"]), &["a", "b", "c", "d"]));
    assert!(matches(&e(&["a", "...", "d"]), &["a", "d"]));
    assert!(!matches(&e(&["a", "...", "d"]), &["a", "b", "c"]));
    assert!(!matches(&e(&["a", "b"]), &["a", "b", "c"]));
}
