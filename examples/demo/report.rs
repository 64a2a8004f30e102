//! Turns what the tasks recorded into failover episodes, a summary table and its checks.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use zk_failover::client::{ClientCounters, SessionState};

use super::Namer;
use super::faults::{FaultKind, Step, StepKind};
use super::workload::{Live, OpKind, Sample, Transition, WatchTally};

/// A period without a connection: from the loss to the session being back.
#[derive(Debug, Clone)]
pub(crate) struct Episode {
    /// Seconds since the workload started.
    pub(crate) lost: f64,
    /// When the session was back (`None`: never).
    pub(crate) back: Option<f64>,
    /// The server the session was on.
    pub(crate) from: String,
    /// The server it came back on.
    pub(crate) to: String,
}

impl Episode {
    /// Loss to back, in ms.
    pub(crate) fn reconnect_ms(&self) -> Option<f64> {
        self.back.map(|b| (b - self.lost) * 1000.0)
    }
}

/// A fault or heal step and what it did to the session.
#[derive(Debug, Clone)]
pub(crate) struct StepReport {
    /// Seconds since the workload started.
    pub(crate) at: f64,
    pub(crate) kind: StepKind,
    pub(crate) label: String,
    /// Step to connection lost, in ms (`None`: the session was not disturbed).
    pub(crate) lost_after_ms: Option<f64>,
    /// Step to session back, in ms (`None`: not disturbed, or never back).
    pub(crate) back_after_ms: Option<f64>,
}

impl StepReport {
    pub(crate) fn is_fault(&self) -> bool {
        matches!(self.kind, StepKind::Fault(_))
    }
}

/// What `Report::build` needs.
pub(crate) struct Inputs<'a> {
    pub(crate) description: String,
    pub(crate) negotiated: Duration,
    pub(crate) session_id: i64,
    pub(crate) session_id_end: i64,
    pub(crate) final_state: SessionState,
    pub(crate) ephemeral_at_end: bool,
    pub(crate) t0: Instant,
    pub(crate) workload_time: Duration,
    pub(crate) planned: Duration,
    pub(crate) interrupted: bool,
    pub(crate) steps: Vec<Step>,
    pub(crate) transitions: Vec<Transition>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) live: &'a Live,
    pub(crate) tally: WatchTally,
    pub(crate) changes: Option<i32>,
    pub(crate) counters: ClientCounters,
    pub(crate) namer: &'a Namer,
    pub(crate) svg: Option<PathBuf>,
}

/// Everything the demo measured.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) description: String,
    pub(crate) negotiated: Duration,
    pub(crate) session_id: i64,
    pub(crate) session_id_end: i64,
    pub(crate) final_state: SessionState,
    /// Seconds the workload ran.
    pub(crate) seconds: f64,
    pub(crate) planned: Duration,
    pub(crate) interrupted: bool,
    pub(crate) steps: Vec<StepReport>,
    pub(crate) episodes: Vec<Episode>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) writes_ok: u64,
    /// Writes that failed with `ConnectionLoss { outcome_unknown: true }`.
    pub(crate) writes_unknown: u64,
    pub(crate) writes_failed: u64,
    pub(crate) reads_ok: u64,
    pub(crate) reads_failed: u64,
    /// `exists` on the ephemeral node said "no node" at some point.
    pub(crate) ephemeral_missing: u64,
    pub(crate) ephemeral_at_end: bool,
    /// `NodeDataChanged` events the persistent watch delivered.
    pub(crate) watch_events: u64,
    pub(crate) resyncs: u64,
    /// Writes actually applied (the counter's final data version).
    pub(crate) changes: Option<u64>,
    pub(crate) counters: ClientCounters,
    pub(crate) svg: Option<PathBuf>,
    /// With `--metrics`: the client's series in Prometheus' text format.
    pub(crate) metrics: Option<String>,
}

fn secs(t0: Instant, at: Instant) -> f64 {
    match at.checked_duration_since(t0) {
        Some(d) => d.as_secs_f64(),
        None => -t0.saturating_duration_since(at).as_secs_f64(),
    }
}

/// Median and maximum.
pub(crate) fn median_max(values: &[f64]) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    };
    Some((median, v[n - 1]))
}

fn episodes(t0: Instant, transitions: &[Transition], namer: &Namer) -> Vec<Episode> {
    let mut out = Vec::new();
    let mut open: Option<(f64, String)> = None;
    let mut reconnects = transitions.first().map_or(0, |t| t.reconnects);
    for tr in transitions {
        let t = secs(t0, tr.at);
        let name = namer.name(tr.server);
        match tr.state {
            SessionState::Disconnected => {
                if open.is_none() {
                    open = Some((t, name));
                }
            }
            SessionState::Connected | SessionState::ConnectedReadOnly => {
                if let Some((lost, from)) = open.take() {
                    out.push(Episode {
                        lost,
                        back: Some(t),
                        from,
                        to: name,
                    });
                } else if tr.reconnects > reconnects {
                    // Lost and back between two polls of the state stream.
                    let pause = tr.last_pause.unwrap_or_default().as_secs_f64();
                    out.push(Episode {
                        lost: t - pause,
                        back: Some(t),
                        from: "?".to_owned(),
                        to: name,
                    });
                }
            }
            SessionState::Connecting => {}
            _ => {
                if let Some((lost, from)) = open.take() {
                    out.push(Episode {
                        lost,
                        back: None,
                        from,
                        to: String::new(),
                    });
                }
            }
        }
        reconnects = tr.reconnects;
    }
    if let Some((lost, from)) = open {
        out.push(Episode {
            lost,
            back: None,
            from,
            to: String::new(),
        });
    }
    out
}

impl Report {
    pub(crate) fn build(i: Inputs<'_>) -> Self {
        let episodes = episodes(i.t0, &i.transitions, i.namer);
        let times: Vec<f64> = i.steps.iter().map(|s| secs(i.t0, s.at)).collect();
        let steps = i
            .steps
            .iter()
            .enumerate()
            .map(|(n, step)| {
                let at = times[n];
                let until = times.get(n + 1).copied().unwrap_or(f64::INFINITY);
                // A loss belongs to the latest step before it (small clock slack allowed).
                let mine: Vec<&Episode> = episodes
                    .iter()
                    .filter(|e| e.lost >= at - 0.001 && e.lost < until - 0.001)
                    .collect();
                let lost_after_ms = mine.first().map(|e| ((e.lost - at) * 1000.0).max(0.0));
                let back_after_ms = if mine.is_empty() || mine.iter().any(|e| e.back.is_none()) {
                    None
                } else {
                    mine.iter()
                        .filter_map(|e| e.back)
                        .reduce(f64::max)
                        .map(|b| (b - at) * 1000.0)
                };
                StepReport {
                    at,
                    kind: step.kind,
                    label: step.label.clone(),
                    lost_after_ms,
                    back_after_ms,
                }
            })
            .collect();
        Self {
            description: i.description,
            negotiated: i.negotiated,
            session_id: i.session_id,
            session_id_end: i.session_id_end,
            final_state: i.final_state,
            seconds: i.workload_time.as_secs_f64(),
            planned: i.planned,
            interrupted: i.interrupted,
            steps,
            episodes,
            samples: i.samples,
            writes_ok: Live::get(&i.live.writes_ok),
            writes_unknown: Live::get(&i.live.writes_unknown),
            writes_failed: Live::get(&i.live.writes_failed),
            reads_ok: Live::get(&i.live.reads_ok),
            reads_failed: Live::get(&i.live.reads_failed),
            ephemeral_missing: Live::get(&i.live.ephemeral_missing),
            ephemeral_at_end: i.ephemeral_at_end,
            watch_events: i.tally.events,
            resyncs: i.tally.resyncs,
            changes: i.changes.and_then(|c| u64::try_from(c).ok()),
            counters: i.counters,
            svg: i.svg,
            metrics: None,
        }
    }

    /// Faults injected (heals not counted).
    pub(crate) fn faults(&self) -> usize {
        self.steps.iter().filter(|s| s.is_fault()).count()
    }

    /// Failover pauses as the application saw them, in ms: from each fault (or heal) that
    /// disturbed the session to the session being back; without injected faults, from each
    /// connection loss to the session being back.
    pub(crate) fn pauses_ms(&self) -> Vec<f64> {
        if self.steps.is_empty() {
            return self
                .episodes
                .iter()
                .filter_map(Episode::reconnect_ms)
                .collect();
        }
        self.steps.iter().filter_map(|s| s.back_after_ms).collect()
    }

    /// Connection lost to session back, per loss, in ms.
    pub(crate) fn reconnects_ms(&self) -> Vec<f64> {
        self.episodes
            .iter()
            .filter_map(Episode::reconnect_ms)
            .collect()
    }

    /// The slowest single operation, in ms.
    pub(crate) fn max_op_ms(&self) -> f64 {
        self.samples.iter().map(|s| s.ms).fold(0.0, f64::max)
    }

    /// Same session from start to end, never expired.
    pub(crate) fn session_kept(&self) -> bool {
        self.session_id == self.session_id_end
            && self.final_state.is_connected()
            && self.episodes.iter().all(|e| e.back.is_some())
    }

    /// Changes the watch did not deliver (`None` if the final count could not be read).
    pub(crate) fn missed_events(&self) -> Option<i128> {
        self.changes
            .map(|c| i128::from(c) - i128::from(self.watch_events))
    }

    /// Whether every change was either delivered or lies in a gap the client flagged with a
    /// `Resync` — and the gap holds no more than the writes whose answer was lost (a
    /// notification is sent before its write's reply, so only those can be missed).
    /// Applied writes must match the counter's changes exactly.
    pub(crate) fn watch_covered(&self) -> bool {
        match self.missed_events() {
            Some(0) => true,
            Some(m) if m > 0 => {
                self.resyncs > 0
                    && m <= i128::from(self.writes_unknown + self.counters.writes.applied)
            }
            _ => false,
        }
    }

    /// Everything that went wrong; empty means the demo passed.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.session_id != self.session_id_end {
            p.push(format!(
                "the session changed: {:#x} -> {:#x}",
                self.session_id, self.session_id_end
            ));
        }
        if !self.final_state.is_connected() {
            p.push(format!(
                "the session ended {:?}, not connected",
                self.final_state
            ));
        }
        if self.episodes.iter().any(|e| e.back.is_none()) {
            p.push("a connection loss was never repaired".to_owned());
        }
        if self.reads_failed > 0 {
            p.push(format!("{} reads failed", self.reads_failed));
        }
        if self.writes_failed > 0 {
            p.push(format!(
                "{} writes failed other than by connection loss",
                self.writes_failed
            ));
        }
        if self.writes_unknown > 0 {
            p.push(format!(
                "{} writes of unknown outcome (the known-outcome form should resolve every one)",
                self.writes_unknown
            ));
        }
        // Every write reported applied changed the counter once, and nothing else did.
        if let Some(c) = self.changes
            && c != self.writes_ok
        {
            p.push(format!(
                "{} writes reported applied, but the counter changed {c} times",
                self.writes_ok
            ));
        }
        if self.ephemeral_missing > 0 || !self.ephemeral_at_end {
            p.push("the ephemeral node disappeared".to_owned());
        }
        match self.missed_events() {
            None => p.push("could not read the final counter".to_owned()),
            Some(m) if m < 0 => p.push(format!("{} more watch events than changes", -m)),
            Some(_) if !self.watch_covered() => p.push(format!(
                "watch events {} vs changes {:?}: missed events not covered by a Resync",
                self.watch_events, self.changes
            )),
            Some(_) => {}
        }
        p
    }

    /// The summary table.
    pub(crate) fn render(&self, color: bool) -> String {
        let (bold, green, red, reset) = if color {
            ("\x1b[1m", "\x1b[1;32m", "\x1b[1;31m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let mut s = String::new();
        let rule = "=".repeat(92);
        let _ = writeln!(s, "\n{bold}{rule}");
        let _ = writeln!(s, " zk-failover demo: summary{reset}");
        let _ = writeln!(s, "{rule}");
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, " {k:<18} {v}");
        };
        row(&mut s, "ensemble", self.description.clone());
        row(
            &mut s,
            "session",
            format!(
                "{:#x}, negotiated timeout {} ms",
                self.session_id,
                self.negotiated.as_millis()
            ),
        );
        row(
            &mut s,
            "ran for",
            format!(
                "{:.1} s{}",
                self.seconds,
                if self.interrupted {
                    format!(" (interrupted; planned {} s)", self.planned.as_secs())
                } else {
                    String::new()
                }
            ),
        );
        let kills = self
            .steps
            .iter()
            .filter(|x| x.kind == StepKind::Fault(FaultKind::Kill))
            .count();
        let freezes = self
            .steps
            .iter()
            .filter(|x| x.kind == StepKind::Fault(FaultKind::Freeze))
            .count();
        row(
            &mut s,
            "faults",
            if self.steps.is_empty() {
                "none injected".to_owned()
            } else {
                format!(
                    "{} injected: {kills} x SIGKILL (then restart), {freezes} x SIGSTOP (then SIGCONT)",
                    self.faults()
                )
            },
        );
        if !self.steps.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "   {:>7}  {:<50} {:>10}  {:>12}",
                "at", "step", "conn. lost", "session back"
            );
            for st in &self.steps {
                let lost = st
                    .lost_after_ms
                    .map_or_else(|| "-".to_owned(), |v| format!("+{v:.0} ms"));
                let back = match (st.back_after_ms, st.lost_after_ms) {
                    (Some(v), _) => format!("+{v:.0} ms"),
                    (None, Some(_)) => "never".to_owned(),
                    (None, None) => "undisturbed".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "   {:>6.1}s  {:<50} {:>10}  {:>12}",
                    st.at, st.label, lost, back
                );
            }
            let _ = writeln!(s);
        }
        let stat = |v: &[f64]| match median_max(v) {
            Some((m, x)) => format!("median {m:.0} ms, max {x:.0} ms (n = {})", v.len()),
            None => "none".to_owned(),
        };
        row(
            &mut s,
            "failover pause",
            format!(
                "{}  {}",
                stat(&self.pauses_ms()),
                if self.steps.is_empty() {
                    "[connection lost -> session back]"
                } else {
                    "[fault -> session back]"
                }
            ),
        );
        row(
            &mut s,
            "reconnect",
            format!(
                "{}  [connection lost -> session back]",
                stat(&self.reconnects_ms())
            ),
        );
        row(
            &mut s,
            "slowest operation",
            format!("{:.0} ms", self.max_op_ms()),
        );
        let yes_no = |ok: bool, yes: &str, no: &str| {
            if ok {
                format!("{green}{yes}{reset}")
            } else {
                format!("{red}{no}{reset}")
            }
        };
        row(
            &mut s,
            "session kept",
            yes_no(
                self.session_kept() && self.ephemeral_missing == 0 && self.ephemeral_at_end,
                "yes: same session id throughout, never expired, ephemeral node still there",
                "NO",
            ),
        );
        row(
            &mut s,
            "writes",
            format!(
                "{} ok ({} answers lost in flight, resolved by the servers' state: {} applied, \
                 {} sent again), {} of unknown outcome, {} other failures",
                self.writes_ok,
                self.counters.writes.applied + self.counters.writes.sent_again,
                self.counters.writes.applied,
                self.counters.writes.sent_again,
                self.writes_unknown,
                self.writes_failed
            ),
        );
        row(
            &mut s,
            "reads",
            format!(
                "{} ok, {} failed  (reads in flight at a failure are re-sent: {} re-sent)",
                self.reads_ok, self.reads_failed, self.counters.session.resent
            ),
        );
        let watch = match (self.changes, self.missed_events()) {
            (Some(c), Some(m)) => format!(
                "{} received / {c} changes made ({} missed in disconnect gaps, {} Resync signalled) {}",
                self.watch_events,
                m.max(0),
                self.resyncs,
                yes_no(self.watch_covered(), "covered", "NOT COVERED")
            ),
            _ => format!(
                "{} received / changes unknown ({} Resync)",
                self.watch_events, self.resyncs
            ),
        };
        row(&mut s, "watch events", watch);
        let c = &self.counters.session;
        row(
            &mut s,
            "engine counters",
            format!(
                "{} reconnects ({} to another server), {} attempts ({} failed), {} detector trips",
                c.reconnects, c.failovers, c.attempts, c.failed_attempts, c.detector_trips
            ),
        );
        if let Some(p) = &self.svg {
            row(
                &mut s,
                "latency chart",
                format!("{} (open it in a browser)", p.display()),
            );
        }
        let problems = self.problems();
        if problems.is_empty() {
            row(&mut s, "result", format!("{green}PASS{reset}"));
        } else {
            row(
                &mut s,
                "result",
                format!("{red}FAIL{reset}: {}", problems.join("; ")),
            );
        }
        let _ = writeln!(s, "{bold}{rule}{reset}");
        if let Some(metrics) = &self.metrics {
            let _ = writeln!(
                s,
                "\n{bold}metrics{reset} (Prometheus text, histogram buckets left out; \
                 docs/metrics.md)\n{metrics}"
            );
        }
        s
    }

    /// Samples of one kind, for the chart.
    pub(crate) fn samples_of(&self, op: OpKind) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.op == op)
    }
}
