//! The fault schedule and the injector: SIGKILL and SIGSTOP of the session's server and of
//! the leader, each healed (restart / SIGCONT) a few seconds later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zk_failover::Client;
use zk_testkit::Ensemble;

use super::ui::{Tone, Ui};
use super::workload::Live;

/// What is done to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// SIGKILL (a crash: the kernel resets its connections), healed by a restart.
    Kill,
    /// SIGSTOP (a frozen JVM, a long GC pause: connections stay open, nothing answers),
    /// healed by SIGCONT.
    Freeze,
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Victim {
    /// The server the session is connected to.
    SessionServer,
    /// The current leader (the session may or may not be on it).
    Leader,
}

/// One fault and its healing, relative to the workload's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cycle {
    pub(crate) apply: Duration,
    pub(crate) heal: Duration,
    pub(crate) kind: FaultKind,
    pub(crate) victim: Victim,
}

impl Cycle {
    pub(crate) fn describe(&self) -> &'static str {
        match (self.kind, self.victim) {
            (FaultKind::Kill, Victim::SessionServer) => "kill the session's server",
            (FaultKind::Freeze, Victim::SessionServer) => "freeze the session's server",
            (FaultKind::Kill, Victim::Leader) => "kill the leader",
            (FaultKind::Freeze, Victim::Leader) => "freeze the leader",
        }
    }
}

/// The faults, most telling first.
const PLAN: [(FaultKind, Victim); 4] = [
    (FaultKind::Kill, Victim::SessionServer),
    (FaultKind::Freeze, Victim::SessionServer),
    (FaultKind::Kill, Victim::Leader),
    (FaultKind::Freeze, Victim::Leader),
];

/// Spreads up to four fault cycles over `duration`: 2 s of steady state first and last, at
/// least 6 s per cycle, each fault held for 45 % of its cycle.
pub(crate) fn schedule(duration: Duration) -> Vec<Cycle> {
    let usable = duration.saturating_sub(Duration::from_secs(4));
    if usable < Duration::from_secs(3) {
        return Vec::new();
    }
    let cycles = (usable.as_secs() / 6).clamp(1, 4);
    // `cycles` is 1..=4.
    let per = usable / u32::try_from(cycles).unwrap_or(4);
    PLAN.iter()
        .take(usize::try_from(cycles).unwrap_or(4))
        .zip(0u32..)
        .map(|(&(kind, victim), i)| {
            let apply = Duration::from_secs(2) + per * i;
            Cycle {
                apply,
                heal: apply + per.mul_f64(0.45),
                kind,
                victim,
            }
        })
        .collect()
}

/// Whether a step broke something or mended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepKind {
    Fault(FaultKind),
    Heal(FaultKind),
}

/// One thing the injector did.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// When the signal was sent.
    pub(crate) at: Instant,
    pub(crate) kind: StepKind,
    /// Human label, e.g. `SIGKILL server 2 (leader, session's server)`.
    pub(crate) label: String,
}

/// Sleeps until `at`; false when the stop signal came first.
async fn until(at: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Runs the schedule against `ens`; always heals what it broke before returning.
pub(crate) async fn inject(
    ens: Arc<Ensemble>,
    client: Client,
    plan: Vec<Cycle>,
    t0: Instant,
    live: Arc<Live>,
    ui: Arc<Ui>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for cycle in plan {
        if !until(t0 + cycle.apply, &mut stop).await {
            break;
        }
        // Never break a quorum: the previous victim must be serving again.
        if ens.wait_serving(Duration::from_secs(30)).await.is_err()
            || ens.wait_for_leader(Duration::from_secs(30)).await.is_err()
        {
            ui.event(
                Tone::Warn,
                &format!(
                    "ensemble not whole again: skipping \"{}\"",
                    cycle.describe()
                ),
            );
            continue;
        }
        let leader = ens.leader().await;
        let on = client.server().and_then(|a| ens.node_for_addr(a));
        let Some(node) = (match cycle.victim {
            Victim::SessionServer => on,
            Victim::Leader => leader,
        }) else {
            continue;
        };
        let role = if Some(node) == leader {
            "leader"
        } else {
            "follower"
        };
        let session_there = on == Some(node);
        let whose = if session_there {
            ", the session's server"
        } else {
            ""
        };
        let (signal, heal_signal) = match cycle.kind {
            FaultKind::Kill => ("SIGKILL", "restart"),
            FaultKind::Freeze => ("SIGSTOP", "SIGCONT"),
        };
        let label = format!("{signal} server {} ({role}{whose})", node + 1);
        // Announce first: the session may notice before the signal call returns.
        let at = Instant::now();
        live.set_last_step(at, format!("{signal} server {}", node + 1));
        ui.event(Tone::Fault, &label);
        let applied = match cycle.kind {
            FaultKind::Kill => ens.node(node).kill().map_err(|e| e.to_string()),
            FaultKind::Freeze => ens.node(node).try_freeze().map_err(|e| e.to_string()),
        };
        if let Err(e) = applied {
            ui.event(Tone::Warn, &format!("{label} failed: {e}"));
            continue;
        }
        steps.push(Step {
            at,
            kind: StepKind::Fault(cycle.kind),
            label,
        });

        // Hold the fault (cut short by the stop signal), then heal it in any case.
        until(t0 + cycle.heal, &mut stop).await;
        let label = format!("{heal_signal} server {}", node + 1);
        let at = Instant::now();
        live.set_last_step(at, label.clone());
        ui.event(Tone::Heal, &label);
        let healed = match cycle.kind {
            FaultKind::Kill => ens.node(node).restart().await.map_err(|e| e.to_string()),
            FaultKind::Freeze => ens.node(node).try_thaw().map_err(|e| e.to_string()),
        };
        if let Err(e) = healed {
            ui.event(Tone::Warn, &format!("{label} failed: {e}"));
            continue;
        }
        steps.push(Step {
            at,
            kind: StepKind::Heal(cycle.kind),
            label,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_fits_the_duration() {
        assert!(schedule(Duration::from_secs(5)).is_empty());
        assert_eq!(schedule(Duration::from_secs(10)).len(), 1);
        assert_eq!(schedule(Duration::from_secs(16)).len(), 2);
        assert_eq!(schedule(Duration::from_secs(28)).len(), 4);
        let s = schedule(Duration::from_secs(45));
        assert_eq!(s.len(), 4);
        for c in &s {
            assert!(c.apply < c.heal && c.heal < Duration::from_secs(43));
        }
    }
}
