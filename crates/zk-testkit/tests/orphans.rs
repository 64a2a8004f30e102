//! No orphans, ever: a test process that panics, exits without dropping, or is SIGKILLed with a
//! live ensemble leaves no JVM behind. Each scenario re-executes this test binary as a child
//! (selecting `orphan_child` with an environment variable), which starts a 1-node ensemble and
//! then dies in the chosen way.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use zk_testkit::{Ensemble, pids_referencing};

const CHILD_ENV: &str = "ZK_TESTKIT_ORPHAN_CHILD";
const START_LIMIT: Duration = Duration::from_secs(150);
const CLEANUP_LIMIT: Duration = Duration::from_secs(20);

/// The child role. Without the environment variable this test does nothing.
#[test]
fn orphan_child() {
    static SHARED: OnceLock<Ensemble> = OnceLock::new();
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ens = Ensemble::builder()
        .nodes(1)
        .orphan_watchdog(mode != "no-watchdog")
        .start_blocking()
        .unwrap();
    let pids: Vec<String> = ens
        .nodes()
        .iter()
        .filter_map(|n| n.pid())
        .map(|p| p.to_string())
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ZKDIR={}", ens.dir().display()).unwrap();
    writeln!(out, "ZKPIDS={}", pids.join(",")).unwrap();
    out.flush().unwrap();
    drop(out);
    match mode.as_str() {
        "panic" => panic!("deliberate panic with a live ensemble"),
        "exit" => {
            // Kept in a static, as tests sharing one ensemble do: its destructor never runs.
            assert!(SHARED.set(ens).is_ok());
            std::process::exit(0);
        }
        _ => loop {
            // Wait to be SIGKILLed by the parent.
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

struct Spawned {
    child: Child,
    dir: PathBuf,
    pids: Vec<u32>,
}

fn spawn_child(mode: &str, pid_dir: Option<&Path>) -> Spawned {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if let Some(d) = pid_dir {
        cmd.env("ZK_TESTKIT_PID_DIR", d);
    }
    let mut child = cmd
        .args(["orphan_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut dir = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print "test orphan_child ... " on the same line first.
            if let Some((_, d)) = line.split_once("ZKDIR=") {
                dir = Some(PathBuf::from(d));
            } else if let Some((_, p)) = line.split_once("ZKPIDS=") {
                let pids: Vec<u32> = p.split(',').filter_map(|s| s.parse().ok()).collect();
                let _ = tx.send((dir.take(), pids));
            }
        }
    });
    match rx.recv_timeout(START_LIMIT) {
        Ok((Some(dir), pids)) => {
            assert!(!pids.is_empty(), "child reported no JVM pid");
            Spawned { child, dir, pids }
        }
        other => {
            let _ = child.kill();
            let status = child.wait();
            panic!("child ({mode}) did not report its ensemble: {other:?}, status {status:?}");
        }
    }
}

fn jvm_alive(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let needle = dir.as_os_str().as_encoded_bytes();
        c.windows(needle.len()).any(|w| w == needle)
    }) && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
}

fn describe(pids: &[u32]) -> Vec<String> {
    pids.iter()
        .map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

fn assert_cleaned_up(dir: &Path, pids: &[u32], what: &str) {
    let deadline = Instant::now() + CLEANUP_LIMIT;
    loop {
        let left = pids_referencing(dir);
        if left.is_empty() && pids.iter().all(|&p| !jvm_alive(p, dir)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: processes survived: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn panicking_test_leaves_no_jvm() {
    let Spawned {
        mut child,
        dir,
        pids,
    } = spawn_child("panic", None);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was meant to fail");
    // Drop ran during unwinding: everything is gone by the time the process exits.
    let left = pids_referencing(&dir);
    assert!(
        left.is_empty(),
        "outlived a panicking test: {:?}",
        describe(&left)
    );
    assert_cleaned_up(&dir, &pids, "panic");
    assert!(!dir.exists(), "temp dir left behind");
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn exit_without_drop_is_cleaned_by_the_watchdog() {
    let Spawned {
        mut child,
        dir,
        pids,
    } = spawn_child("exit", None);
    assert!(child.wait().unwrap().success());
    assert_cleaned_up(&dir, &pids, "exit without drop");
    let deadline = Instant::now() + CLEANUP_LIMIT;
    while dir.exists() {
        assert!(
            Instant::now() < deadline,
            "watchdog left the temp dir behind"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sigkilled_test_is_cleaned_by_the_watchdog() {
    let Spawned {
        mut child,
        dir,
        pids,
    } = spawn_child("sigkill", None);
    child.kill().unwrap(); // SIGKILL: no unwinding, no destructors
    child.wait().unwrap();
    assert_cleaned_up(&dir, &pids, "SIGKILL");
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn next_start_reaps_jvms_of_dead_owners() {
    // A private pid registry, so the ensembles other tests start do not reap it first.
    let registry = tempfile::tempdir().unwrap();
    let Spawned {
        mut child,
        dir,
        pids,
    } = spawn_child("no-watchdog", Some(registry.path()));
    child.kill().unwrap();
    child.wait().unwrap();
    // Without a watchdog the JVM survives its owner ...
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        pids.iter().any(|&p| jvm_alive(p, &dir)),
        "expected a surviving JVM"
    );
    // ... until the reaper that runs at every Ensemble start finds it.
    assert_eq!(zk_testkit::reap_orphans_in(registry.path()), pids.len());
    assert_cleaned_up(&dir, &pids, "reaper");
    assert_eq!(
        std::fs::read_dir(registry.path()).unwrap().count(),
        0,
        "stale pid files"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
