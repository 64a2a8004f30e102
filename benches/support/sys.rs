//! /proc readers: CPU time (utime+stime, and per-thread run time from schedstat) and RSS.
//! No `getrusage` (it would need `unsafe`).

use std::time::Duration;

/// utime+stime of a process from `/proc/<pid>/stat` (10 ms resolution; counts exited threads).
pub(crate) fn process_cpu(pid: Option<u32>) -> Duration {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    stat_cpu(&path).unwrap_or_default()
}

fn stat_cpu(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // CLK_TCK is 100 on Linux (USER_HZ).
    Some(Duration::from_millis(ticks * 10))
}

/// Run time of every live thread of a process (ns resolution, from schedstat), leaving out
/// threads whose name starts with `exclude` (e.g. the testkit's fault-proxy thread).
pub(crate) fn threads_cpu(pid: Option<u32>, exclude: &str) -> Duration {
    let dir = pid.map_or_else(
        || "/proc/self/task".to_owned(),
        |p| format!("/proc/{p}/task"),
    );
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return process_cpu(pid);
    };
    let mut total = Duration::ZERO;
    for e in entries.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !exclude.is_empty() && comm.trim_end().starts_with(exclude) {
            continue;
        }
        if let Some(ns) = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            })
        {
            total += Duration::from_nanos(ns);
        }
    }
    total
}

/// Resident set size in bytes from `/proc/<pid>/statm` (assumes 4 KiB pages).
pub(crate) fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/statm".to_owned(),
        |p| format!("/proc/{p}/statm"),
    );
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// The 1-minute load average now (NaN if unknown).
pub(crate) fn load1() -> f64 {
    machine()
        .2
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// `nproc`, the CPU model and the load average, for the report.
pub(crate) fn machine() -> (usize, String, String) {
    let n = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    (n, model, load)
}

/// Busy and total CPU time of the whole machine from `/proc/stat` (all cores, 10 ms ticks).
pub(crate) fn machine_cpu() -> (Duration, Duration) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (
        Duration::from_millis((total - idle) * 10),
        Duration::from_millis(total * 10),
    )
}

/// The kernel's TCP counters that count connection attempts and listen-queue drops, for the
/// whole network namespace (everything in the benchmarks runs on loopback).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpCounters {
    /// `Tcp: PassiveOpens` (`/proc/net/snmp`): connections a listener accepted (SYN_RECV).
    pub(crate) passive_opens: u64,
    /// `Tcp: ActiveOpens`: connect() calls that sent a SYN.
    pub(crate) active_opens: u64,
    /// `Tcp: AttemptFails`: connects that failed (e.g. refused by a dead port).
    pub(crate) attempt_fails: u64,
    /// `TcpExt: ListenOverflows` (`/proc/net/netstat`): accept queue full.
    pub(crate) listen_overflows: u64,
    /// `TcpExt: ListenDrops`: SYNs dropped by a listener (includes the overflows).
    pub(crate) listen_drops: u64,
}

impl TcpCounters {
    /// Reads the counters now; missing fields read as 0.
    pub(crate) fn read() -> Self {
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
        let get = |text: &str, prefix: &str, name: &str| -> u64 {
            // Pairs of lines: "Tcp: Name1 Name2 …" then "Tcp: v1 v2 …".
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
            lines
                .chunks(2)
                .find_map(|pair| {
                    let (names, values) = (pair.first()?, pair.get(1)?);
                    let i = names.split_whitespace().position(|n| n == name)?;
                    values.split_whitespace().nth(i)?.parse().ok()
                })
                .unwrap_or(0)
        };
        Self {
            passive_opens: get(&snmp, "Tcp:", "PassiveOpens"),
            active_opens: get(&snmp, "Tcp:", "ActiveOpens"),
            attempt_fails: get(&snmp, "Tcp:", "AttemptFails"),
            listen_overflows: get(&netstat, "TcpExt:", "ListenOverflows"),
            listen_drops: get(&netstat, "TcpExt:", "ListenDrops"),
        }
    }

    /// `later − self`, field by field.
    pub(crate) fn delta(self, later: Self) -> Self {
        Self {
            passive_opens: later.passive_opens.saturating_sub(self.passive_opens),
            active_opens: later.active_opens.saturating_sub(self.active_opens),
            attempt_fails: later.attempt_fails.saturating_sub(self.attempt_fails),
            listen_overflows: later.listen_overflows.saturating_sub(self.listen_overflows),
            listen_drops: later.listen_drops.saturating_sub(self.listen_drops),
        }
    }
}
