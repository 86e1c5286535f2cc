//! The real binary, as the end-to-end and crash tests run it: `Env`, one temporary
//! database and outbox file at an instant given by `--now`; `amends`, the command on a
//! given database (for the tests that kill it), and a synthetic book.
#![allow(dead_code)] // each test module uses its own part

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Env {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    /// A settings file every command is run with, if any.
    pub config: Option<PathBuf>,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Env { _dir: dir, root, config: None }
    }

    /// An environment whose every command runs with `settings` as its settings file.
    pub fn configured(settings: &str) -> Self {
        let mut env = Env::new();
        let path = env.path("amends.toml");
        std::fs::write(&path, settings).unwrap();
        env.config = Some(path);
        env
    }

    /// Writes a book (plans, topology and customers as CSV) and imports it at `now`.
    pub fn import_book(&self, now: &str, plans: &str, topology: &str, customers: &str) {
        let book = self.path("book");
        std::fs::create_dir_all(&book).unwrap();
        std::fs::write(book.join("plans.csv"), plans).unwrap();
        std::fs::write(book.join("topology.csv"), topology).unwrap();
        std::fs::write(book.join("customers.csv"), customers).unwrap();
        self.ok(now, &["import", "--dir", book.to_str().unwrap()]);
    }

    /// Imports people from `agents` (CSV) at `now`.
    pub fn import_agents(&self, now: &str, agents: &str) {
        let path = self.path("agents.csv");
        std::fs::write(&path, agents).unwrap();
        self.ok(now, &["agents", "import", "--file", path.to_str().unwrap()]);
    }

    /// The outbox file as written so far.
    pub fn outbox(&self) -> String {
        std::fs::read_to_string(self.path("outbox.txt")).unwrap_or_default()
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    /// Runs `amends` against this environment's database and outbox at instant `now`.
    pub fn run(&self, now: &str, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_amends"));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command
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

    /// Starts `amends serve` against this environment at instant `now` (its clock stands
    /// there), with no worker pass for an hour, and waits until it listens.
    pub fn serve(&self, now: &str) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_amends"));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .arg("--database")
            .arg(self.path("amends.db"))
            .arg("--outbox-file")
            .arg(self.path("outbox.txt"))
            .args(["--now", now, "serve", "--listen", "127.0.0.1:0", "--poll-seconds", "3600"])
            .env_remove("AMENDS_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amends serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("amends serve says where it listens").unwrap();
            if let Some(rest) = line.split("serving the API on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
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

/// A running `amends serve` ([`Env::serve`]) and its address; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the command on a database at a fixed instant (crash tests) ----

/// `amends --database <db> --now <now>`, deaf to the environment's database URL.
pub fn amends(db: &Path, now: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amends"));
    cmd.arg("--database").arg(db).args(["--now", now]).env_remove("AMENDS_DATABASE_URL");
    cmd
}

/// A copy of a SQLite database (with its WAL), taken while no process has it open.
pub fn copy_db(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let src = std::path::PathBuf::from(format!("{}{suffix}", from.display()));
        if src.exists() {
            std::fs::copy(&src, format!("{}{suffix}", to.display())).unwrap();
        }
    }
}

/// The standard output of a command that must have succeeded (else its standard error).
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Two plans, 40 nodes under one hub, and `customers` customers reachable by email only,
/// spread over four zones.
pub fn write_email_book(dir: &Path, customers: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("plans.csv"),
        "plan_id,name,monthly_price_minor,currency\np1,One,4999,USD\np2,Two,7999,EUR\n",
    )
    .unwrap();
    let mut topo = String::from("element_id,parent_id,kind,name\nroot,,region,R\nhub,root,hub,H\n");
    for n in 0..40 {
        topo.push_str(&format!("n{n},hub,node,N{n}\n"));
    }
    std::fs::write(dir.join("topology.csv"), topo).unwrap();
    let zones = ["UTC", "America/New_York", "Europe/Paris", "Asia/Tokyo"];
    let mut rows = String::from(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n",
    );
    for i in 0..customers {
        rows.push_str(&format!(
            "C{i:06},Name {i},c{i}@example.com,,en-US,{},p{},n{},,{},2020-01-01T00:00:00Z,active\n",
            zones[i % 4],
            i % 2 + 1,
            i % 40,
            i % 28 + 1
        ));
    }
    std::fs::write(dir.join("customers.csv"), rows).unwrap();
}
