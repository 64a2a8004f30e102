//! The `zk-ensemble` command: up, status, kill, restart, freeze, thaw, connect, down.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zk_testkit::pids_referencing;

fn zk_ensemble(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_zk-ensemble"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    eprintln!(
        "$ zk-ensemble {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = zk_ensemble(dir, args);
    assert!(out.status.success(), "zk-ensemble {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Brings the ensemble down even if an assertion fails half-way.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = zk_ensemble(&self.0, &["down"]);
        }
    }
}

fn server_line(status: &str, id: usize) -> &str {
    status
        .lines()
        .find(|l| l.starts_with(&format!("server {id} ")))
        .unwrap()
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn cli_controls_a_detached_ensemble() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("ens");
    let _down = Down(dir.clone());

    // Bad usage is exit code 2; commands without an ensemble fail with 1.
    assert_eq!(zk_ensemble(&dir, &["frobnicate"]).status.code(), Some(2));
    assert_eq!(zk_ensemble(&dir, &["status"]).status.code(), Some(1));

    let connect = ok(&dir, &["up", "--nodes", "3", "--tls"]);
    let connect = connect.trim();
    assert_eq!(connect.split(',').count(), 3, "{connect}");
    assert!(connect.starts_with("127.0.0.1:"));
    // The servers outlived the `up` command.
    assert_eq!(pids_referencing(&dir).len(), 3);
    // A second `up` refuses while the first is running.
    assert_eq!(zk_ensemble(&dir, &["up"]).status.code(), Some(1));

    let status = ok(&dir, &["status"]);
    assert!(status.contains(connect));
    assert_eq!(status.matches("leader").count(), 1, "{status}");
    assert_eq!(status.matches("follower").count(), 2, "{status}");
    assert!(ok(&dir, &["connect"]).trim() == connect);
    assert_eq!(ok(&dir, &["connect", "--tls"]).trim().split(',').count(), 3);

    ok(&dir, &["kill", "1"]);
    assert!(server_line(&ok(&dir, &["status"]), 1).contains("down"));
    assert_eq!(pids_referencing(&dir).len(), 2);
    ok(&dir, &["restart", "1"]);
    let status = ok(&dir, &["status"]);
    assert!(server_line(&status, 1).contains("running"), "{status}");

    ok(&dir, &["freeze", "2"]);
    assert!(server_line(&ok(&dir, &["status"]), 2).contains("frozen"));
    ok(&dir, &["thaw", "2"]);
    assert!(server_line(&ok(&dir, &["status"]), 2).contains("running"));
    assert_eq!(zk_ensemble(&dir, &["kill", "4"]).status.code(), Some(1));

    ok(&dir, &["down"]);
    assert!(pids_referencing(&dir).is_empty());
    assert!(!dir.exists());
}
