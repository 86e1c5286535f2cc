//! For the tests that run (and kill) the binary: the command on a database at a fixed
//! instant, and a synthetic book.

#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output};

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
