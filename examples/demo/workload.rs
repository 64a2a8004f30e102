//! The steady workload on one session: a writer, a reader, a persistent watch and a monitor
//! of the session's state changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use zk_failover::client::{EventType, PersistentWatcher, SessionState, WatchEvent};
use zk_failover::{Client, Error};

use super::Namer;
use super::ui::{Tone, Ui};

/// One `setData` this often.
pub(crate) const WRITE_EVERY: Duration = Duration::from_millis(20);
/// One read (alternately `getData` of the counter and `exists` of the ephemeral node) this often.
pub(crate) const READ_EVERY: Duration = Duration::from_millis(20);

/// Which kind of operation a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Read,
    Write,
}

/// One operation: when it started, how long it took, whether it succeeded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Start, in seconds since the workload started.
    pub(crate) at: f64,
    /// Latency in milliseconds.
    pub(crate) ms: f64,
    pub(crate) op: OpKind,
    pub(crate) ok: bool,
}

/// Counters shown live and summarised at the end.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) t0: Instant,
    pub(crate) writes_ok: AtomicU64,
    /// Writes that failed with `ConnectionLoss { outcome_unknown: true }`.
    pub(crate) writes_unknown: AtomicU64,
    /// Writes that failed any other way.
    pub(crate) writes_failed: AtomicU64,
    pub(crate) reads_ok: AtomicU64,
    pub(crate) reads_failed: AtomicU64,
    /// `exists` of the ephemeral node answered "no node".
    pub(crate) ephemeral_missing: AtomicU64,
    pub(crate) watch_events: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    /// The latest fault step, for "n ms after the fault" in the timeline.
    last_step: Mutex<Option<(Instant, String)>>,
    /// Where the session is, for the progress line.
    server: Mutex<(String, SessionState)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Live {
    pub(crate) fn new(t0: Instant) -> Self {
        Self {
            t0,
            writes_ok: AtomicU64::new(0),
            writes_unknown: AtomicU64::new(0),
            writes_failed: AtomicU64::new(0),
            reads_ok: AtomicU64::new(0),
            reads_failed: AtomicU64::new(0),
            ephemeral_missing: AtomicU64::new(0),
            watch_events: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            last_step: Mutex::new(None),
            server: Mutex::new((String::new(), SessionState::Connecting)),
        }
    }

    pub(crate) fn set_last_step(&self, at: Instant, what: String) {
        *lock(&self.last_step) = Some((at, what));
    }

    pub(crate) fn last_step(&self) -> Option<(Instant, String)> {
        lock(&self.last_step).clone()
    }

    pub(crate) fn set_server(&self, name: String, state: SessionState) {
        *lock(&self.server) = (name, state);
    }

    pub(crate) fn server(&self) -> (String, SessionState) {
        lock(&self.server).clone()
    }

    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn sample(&self, started: Instant, op: OpKind, ok: bool) -> Sample {
        Sample {
            at: started.saturating_duration_since(self.t0).as_secs_f64(),
            ms: started.elapsed().as_secs_f64() * 1000.0,
            op,
            ok,
        }
    }
}

/// Waits for the next tick of `interval`; false when the stop signal came first.
async fn next_tick(tick: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tick.tick() => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

fn interval(every: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(every);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

/// Bumps the counter node every [`WRITE_EVERY`] until stopped.
pub(crate) async fn writer(
    client: Client,
    counter: String,
    live: Arc<Live>,
    ui: Arc<Ui>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = interval(WRITE_EVERY);
    let mut n = 0u64;
    // Versioned writes with a known outcome: after a connection loss the servers' state
    // says whether the write was applied (`set_data_idempotent`), so none stays unknown.
    let mut version = None;
    while next_tick(&mut tick, &mut stop).await {
        n += 1;
        let started = Instant::now();
        let expected = match version {
            Some(v) => Ok(v),
            None => client
                .get_data(&counter)
                .await
                .map(|(_, stat)| stat.version),
        };
        let result = match expected {
            Ok(v) => client.set_data_idempotent(&counter, n.to_string(), v).await,
            Err(e) => Err(e),
        };
        version = result.as_ref().ok().map(|stat| stat.version);
        let ok = result.is_ok();
        match result {
            Ok(_) => Live::bump(&live.writes_ok),
            Err(Error::ConnectionLoss {
                outcome_unknown: true,
            }) => {
                Live::bump(&live.writes_unknown);
                ui.event(
                    Tone::Warn,
                    &format!(
                        "write #{n} in flight when the connection died: ConnectionLoss, outcome unknown (not replayed)"
                    ),
                );
            }
            Err(e) => {
                Live::bump(&live.writes_failed);
                ui.event(Tone::Warn, &format!("write #{n} failed: {e}"));
            }
        }
        samples.push(live.sample(started, OpKind::Write, ok));
    }
    samples
}

/// Reads the counter and checks the ephemeral node every [`READ_EVERY`] until stopped.
pub(crate) async fn reader(
    client: Client,
    counter: String,
    alive: String,
    live: Arc<Live>,
    ui: Arc<Ui>,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = interval(READ_EVERY);
    let mut n = 0u64;
    while next_tick(&mut tick, &mut stop).await {
        n += 1;
        let started = Instant::now();
        let ok = if n.is_multiple_of(2) {
            match client.exists(&alive).await {
                Ok(Some(_)) => true,
                Ok(None) => {
                    Live::bump(&live.ephemeral_missing);
                    ui.event(Tone::Warn, "the ephemeral node is gone!");
                    true
                }
                Err(e) => {
                    ui.event(Tone::Warn, &format!("read failed: {e}"));
                    false
                }
            }
        } else {
            match client.get_data(&counter).await {
                Ok(_) => true,
                Err(e) => {
                    ui.event(Tone::Warn, &format!("read failed: {e}"));
                    false
                }
            }
        };
        Live::bump(if ok {
            &live.reads_ok
        } else {
            &live.reads_failed
        });
        samples.push(live.sample(started, OpKind::Read, ok));
    }
    samples
}

/// What the persistent watch delivered.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WatchTally {
    /// `NodeDataChanged` events on the counter.
    pub(crate) events: u64,
    /// `Resync` markers (changes during a disconnect may not have been delivered).
    pub(crate) resyncs: u64,
}

/// Counts the persistent watch's events until `end`.
pub(crate) async fn watch(
    mut watcher: PersistentWatcher,
    live: Arc<Live>,
    ui: Arc<Ui>,
    mut end: watch::Receiver<bool>,
) -> WatchTally {
    let mut tally = WatchTally::default();
    let count = |ev: WatchEvent, tally: &mut WatchTally| -> bool {
        match ev {
            WatchEvent::Event(e) if e.event_type == EventType::NodeDataChanged => {
                tally.events += 1;
                Live::bump(&live.watch_events);
            }
            WatchEvent::Event(e) if e.is_terminal() => return false,
            WatchEvent::Resync { from_zxid, to_zxid } => {
                tally.resyncs += 1;
                Live::bump(&live.resyncs);
                ui.event(
                    Tone::Info,
                    &format!(
                        "persistent watch re-armed; Resync {from_zxid:#x} -> {to_zxid:#x} (changes in the gap are not replayed by the server: re-read)"
                    ),
                );
            }
            _ => {}
        }
        true
    };
    loop {
        tokio::select! {
            ev = watcher.next() => match ev {
                Some(ev) => {
                    if !count(ev, &mut tally) {
                        break;
                    }
                }
                None => break,
            },
            _ = end.changed() => {
                while let Some(ev) = watcher.try_next() {
                    count(ev, &mut tally);
                }
                break;
            }
        }
    }
    tally
}

/// A state change as the monitor saw it.
#[derive(Debug, Clone)]
pub(crate) struct Transition {
    pub(crate) at: Instant,
    pub(crate) state: SessionState,
    pub(crate) server: Option<SocketAddr>,
    /// The engine's reconnect counter when the change was seen.
    pub(crate) reconnects: u64,
    /// The engine's last measured pause when the change was seen.
    pub(crate) last_pause: Option<Duration>,
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Follows the session's state changes until `end`, printing each.
pub(crate) async fn monitor(
    client: Client,
    namer: Namer,
    live: Arc<Live>,
    ui: Arc<Ui>,
    mut end: watch::Receiver<bool>,
) -> Vec<Transition> {
    let mut rx = client.state_stream();
    let mut seen = Vec::new();
    let mut lost_at: Option<(Instant, String)> = None;
    let mut reconnects = client.counters().session.reconnects;
    rx.mark_unchanged();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { break },
            _ = end.changed() => break,
        }
        let change = rx.borrow_and_update().clone();
        let counters = client.counters().session;
        let name = namer.name(change.server);
        live.set_server(name.clone(), change.state);
        let after_fault = |at: Instant| -> String {
            match live.last_step() {
                Some((f, what)) if at >= f && at - f < Duration::from_secs(10) => {
                    format!(", {} after {what}", ms(at - f))
                }
                _ => String::new(),
            }
        };
        match change.state {
            SessionState::Disconnected => {
                ui.event(
                    Tone::Lost,
                    &format!(
                        "Disconnected from {name}; session alive, reconnecting{}",
                        after_fault(change.at)
                    ),
                );
                lost_at = Some((change.at, name));
            }
            SessionState::Connected | SessionState::ConnectedReadOnly => {
                let pause = match lost_at.take() {
                    Some((at, _)) => Some(change.at.saturating_duration_since(at)),
                    // Both changes happened between two polls of the state stream.
                    None if counters.reconnects > reconnects => counters.last_pause,
                    None => None,
                };
                let same = if change.session_id == client.session_id() {
                    "same session"
                } else {
                    "NEW session"
                };
                let text = match pause {
                    Some(p) => format!(
                        "Connected to {name} ({same}): back {} after the loss{}",
                        ms(p),
                        after_fault(change.at)
                    ),
                    None => format!("Connected to {name} ({same})"),
                };
                ui.event(Tone::Back, &text);
            }
            SessionState::Connecting => {}
            other => ui.event(Tone::Warn, &format!("session state {other:?}")),
        }
        reconnects = counters.reconnects;
        seen.push(Transition {
            at: change.at,
            state: change.state,
            server: change.server,
            reconnects: counters.reconnects,
            last_pause: counters.last_pause,
        });
        if change.state.is_terminal() {
            break;
        }
    }
    seen
}
