//! Process plumbing: signals, `/proc` inspection, the pid registry and the orphan watchdog.
//!
//! `unsafe` is forbidden in this workspace, so `libc::kill` and `prctl(PR_SET_PDEATHSIG)` are out
//! of reach. SIGKILL goes through [`std::process::Child::kill`] when we own the child; every other
//! signal (and SIGKILL to a process adopted from a state file) goes through the shell's `kill`
//! builtin (`/bin/sh -c 'kill -s SIG "$1"'`), which exists on every Unix.
//!
//! Orphans are prevented in three layers:
//! 1. `Drop` of the ensemble kills every JVM (this also runs while a panicking test unwinds);
//! 2. a tiny `/bin/sh` watchdog per ensemble polls the owning process every 0.5 s and kills the
//!    JVMs listed in the pid registry as soon as the owner is gone (`SIGKILL`ed test binary,
//!    `std::process::exit`, an ensemble leaked in a `static`);
//! 3. every ensemble start reaps registry entries whose owner is dead (in case the watchdog was
//!    killed too, e.g. by a process-group kill that missed a JVM).
//!
//! Before killing a pid found in a file, the pid's `/proc/<pid>/cmdline` must contain the node's
//! config path, so a recycled pid is never hit.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::TestkitError;

/// A Unix signal the test kit sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sig {
    Kill,
    Term,
    Stop,
    Cont,
}

impl Sig {
    fn name(self) -> &'static str {
        match self {
            Self::Kill => "KILL",
            Self::Term => "TERM",
            Self::Stop => "STOP",
            Self::Cont => "CONT",
        }
    }
}

/// Send `sig` to `pid` with the shell's `kill` builtin.
pub(crate) fn send_signal(pid: u32, sig: Sig) -> Result<(), TestkitError> {
    let out = Command::new("/bin/sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            sig.name(),
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestkitError::io("running /bin/sh to send a signal", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TestkitError::Signal {
            signal: sig.name(),
            pid,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcState {
    /// Running or sleeping.
    Alive,
    /// Stopped by a signal (SIGSTOP) or traced.
    Stopped,
    /// Exited but not reaped yet.
    Zombie,
    /// No such process.
    Gone,
}

/// The fields after the `(comm)` part of `/proc/<pid>/stat`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

pub(crate) fn proc_state(pid: u32) -> ProcState {
    let Some(fields) = stat_fields(pid) else {
        return ProcState::Gone;
    };
    match fields.first().map(String::as_str) {
        Some("Z" | "X" | "x") => ProcState::Zombie,
        Some("T" | "t") => ProcState::Stopped,
        Some(_) => ProcState::Alive,
        None => ProcState::Gone,
    }
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn proc_start_time(pid: u32) -> Option<u64> {
    // Field 22 overall; `stat_fields` starts at field 3 (state).
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether `pid`'s command line contains `needle` (a config path of ours).
pub(crate) fn cmdline_contains(pid: u32, needle: &str) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = needle.as_bytes();
    !needle.is_empty() && raw.windows(needle.len()).any(|w| w == needle)
}

/// Every process (other than this one) whose command line mentions `path`.
///
/// Tests use this to prove that no JVM of an ensemble survived: JVMs name their config file,
/// which lives under the ensemble's directory. The orphan watchdog does not name it.
pub fn pids_referencing(path: &Path) -> Vec<u32> {
    let needle = path.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            !matches!(proc_state(pid), ProcState::Gone | ProcState::Zombie)
                && cmdline_contains(pid, &needle)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Poll until `pid` is gone or a zombie, at most `limit`.
pub(crate) fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if matches!(proc_state(pid), ProcState::Gone | ProcState::Zombie) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kill a child we own with SIGKILL and reap it.
pub(crate) fn kill_child(child: &mut Child) {
    // `kill` fails only if the child was already reaped; either way we reap below.
    let _ = child.kill();
    let _ = child.wait();
}

/// Kill a process that is not our child, but only if its command line contains `marker`.
/// Returns whether our process is gone now (a recycled pid that is not ours counts as gone).
pub(crate) fn kill_foreign(pid: u32, marker: &str) -> bool {
    if matches!(proc_state(pid), ProcState::Gone | ProcState::Zombie) {
        return true;
    }
    if !cmdline_contains(pid, marker) {
        tracing::warn!(pid, marker, "not killing pid: its command line is not ours");
        return true;
    }
    if let Err(e) = send_signal(pid, Sig::Kill) {
        tracing::warn!(pid, error = %e, "SIGKILL failed");
    }
    wait_gone(pid, Duration::from_secs(5))
}

// ---------------------------------------------------------------------------------------------
// Pid registry.

/// The directory holding one `.pid` file per running JVM of every attached ensemble.
pub fn registry_dir() -> PathBuf {
    std::env::var_os("ZK_TESTKIT_PID_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("zk-testkit-pids"))
}

/// Who owns a set of JVMs: this process, identified by pid and start time.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    dir: PathBuf,
    /// File-name prefix shared by every node of one ensemble.
    prefix: String,
    owner: u32,
    owner_start: u64,
}

impl Registry {
    pub(crate) fn new(ensemble_tag: &str) -> Result<Self, TestkitError> {
        let dir = registry_dir();
        fs::create_dir_all(&dir)
            .map_err(|e| TestkitError::io(format!("creating {}", dir.display()), e))?;
        let owner = std::process::id();
        let owner_start = proc_start_time(owner).unwrap_or(0);
        Ok(Self {
            dir,
            prefix: format!("{owner}-{ensemble_tag}-"),
            owner,
            owner_start,
        })
    }

    fn file(&self, node_index: usize) -> PathBuf {
        self.dir.join(format!("{}n{}.pid", self.prefix, node_index))
    }

    /// Record (atomically) that `pid` runs node `node_index` with config `marker`.
    pub(crate) fn record(&self, node_index: usize, pid: u32, marker: &str) {
        let path = self.file(node_index);
        let tmp = path.with_extension("tmp");
        let body = format!(
            "pid={pid}\nowner={}\nowner_start={}\nmarker={marker}\n",
            self.owner, self.owner_start
        );
        let res = fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(body.as_bytes()))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = res {
            tracing::warn!(path = %path.display(), error = %e, "could not write pid file");
        }
    }

    pub(crate) fn forget(&self, node_index: usize) {
        let _ = fs::remove_file(self.file(node_index));
    }

    /// Spawn the watchdog shell for this ensemble (see the module docs).
    ///
    /// `scratch` is a directory to delete once the JVMs are dead (the ensemble's temp dir), or
    /// `None`.
    pub(crate) fn spawn_watchdog(&self, scratch: Option<&Path>) -> Result<Child, TestkitError> {
        const SCRIPT: &str = r#"owner=$1; reg=$2; prefix=$3; scratch=$ZK_TESTKIT_SCRATCH
while [ -e "/proc/$owner" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$owner/status" 2>/dev/null; do
  sleep 0.5
done
for f in "$reg/$prefix"*.pid; do
  [ -e "$f" ] || continue
  pid=$(sed -n 's/^pid=//p' "$f")
  marker=$(sed -n 's/^marker=//p' "$f")
  if [ -n "$pid" ] && [ -n "$marker" ] && grep -qaF -- "$marker" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -s KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
done
[ -n "$scratch" ] && rm -rf -- "$scratch"
"#;
        Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("zk-testkit-watchdog")
            .arg(self.owner.to_string())
            .arg(&self.dir)
            .arg(&self.prefix)
            // Not in argv: processes the shell forks carry its argv until they exec, and tests
            // look for leftovers by scanning command lines for the ensemble directory.
            .env(
                "ZK_TESTKIT_SCRATCH",
                scratch.map(Path::as_os_str).unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| TestkitError::io("spawning the orphan watchdog", e))
    }
}

/// One parsed registry entry.
struct Entry {
    pid: u32,
    owner: u32,
    owner_start: u64,
    marker: String,
}

fn parse_entry(text: &str) -> Option<Entry> {
    let mut pid = None;
    let mut owner = None;
    let mut owner_start = None;
    let mut marker = None;
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        match k {
            "pid" => pid = v.parse().ok(),
            "owner" => owner = v.parse().ok(),
            "owner_start" => owner_start = v.parse().ok(),
            "marker" => marker = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(Entry {
        pid: pid?,
        owner: owner?,
        owner_start: owner_start?,
        marker: marker?,
    })
}

fn owner_alive(owner: u32, start: u64) -> bool {
    match proc_state(owner) {
        ProcState::Gone | ProcState::Zombie => false,
        ProcState::Alive | ProcState::Stopped => {
            // A recycled pid has a different start time.
            start == 0 || proc_start_time(owner) == Some(start)
        }
    }
}

/// Kill the JVMs of ensembles whose owning process is dead; returns how many were killed.
///
/// Runs automatically at every [`crate::Ensemble`] start. Entries of live owners are untouched,
/// so parallel test processes do not disturb each other.
pub fn reap_orphans() -> usize {
    reap_orphans_in(&registry_dir())
}

/// [`reap_orphans`] for an explicit registry directory.
pub fn reap_orphans_in(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pid") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Some(e) = parse_entry(&text) else {
            let _ = fs::remove_file(&path);
            continue;
        };
        if owner_alive(e.owner, e.owner_start) {
            continue;
        }
        if !matches!(proc_state(e.pid), ProcState::Gone | ProcState::Zombie)
            && cmdline_contains(e.pid, &e.marker)
        {
            tracing::warn!(
                pid = e.pid,
                owner = e.owner,
                "reaping orphaned ZooKeeper JVM"
            );
            if kill_foreign(e.pid, &e.marker) {
                killed += 1;
            }
        }
        let _ = fs::remove_file(&path);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_entries() {
        let e = parse_entry("pid=12\nowner=34\nowner_start=56\nmarker=/tmp/x/zoo.cfg\n").unwrap();
        assert_eq!((e.pid, e.owner, e.owner_start), (12, 34, 56));
        assert_eq!(e.marker, "/tmp/x/zoo.cfg");
        assert!(parse_entry("pid=12\n").is_none());
        assert!(parse_entry("garbage").is_none());
    }

    #[test]
    fn reads_own_proc_entries() {
        let me = std::process::id();
        assert_eq!(proc_state(me), ProcState::Alive);
        assert!(proc_start_time(me).is_some());
        assert_eq!(proc_state(u32::MAX - 1), ProcState::Gone);
    }
}
