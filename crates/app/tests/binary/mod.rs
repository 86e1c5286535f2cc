//! The real binary, run against one temporary database and outbox file, at an instant
//! given by `--now`: shared by the end-to-end tests.
#![allow(dead_code)] // each test file uses its own part

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Env {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Env { _dir: dir, root }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    /// Runs `amends` against this environment's database and outbox at instant `now`.
    pub fn run(&self, now: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_amends"))
            .arg("--database")
            .arg(self.path("amends.db"))
            .arg("--outbox-file")
            .arg(self.path("outbox.txt"))
            .args(["--now", now])
            .args(args)
            .env_remove("AMENDS_DATABASE_URL")
            .output()
            .unwrap()
    }

    pub fn ok(&self, now: &str, args: &[&str]) -> String {
        let out = self.run(now, args);
        assert!(out.status.success(), "amends {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, now: &str, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(now, args)).unwrap()
    }

    pub fn fails(&self, now: &str, args: &[&str]) -> String {
        let out = self.run(now, args);
        assert!(!out.status.success(), "amends {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }
}
