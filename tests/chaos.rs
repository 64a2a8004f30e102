//! Chaos: a real 3-node ZooKeeper 3.8 ensemble behind `FaultProxy`s, several clients running a
//! mixed workload, a seeded fault schedule, and invariants checked against the servers' final
//! state and the clients' own logs.
//!
//! Workload (one `Client` per worker, all through the proxies): sequential creates, versioned
//! (CAS) counter increments, one long-lived ephemeral node per worker that every worker checks
//! it still owns, one-shot data watches, reads. A separate watcher client holds a
//! persistent-recursive watch over the counters.
//!
//! Faults from a seeded schedule, one node fault and one proxy fault at a time (so there is
//! always a quorum), never touching the current *anchor* host (so a client always has a
//! stable host to reach; the anchor moves every 8 s): kill −9 and restart (any node, the
//! leader), freeze and thaw (the node a client is on, the leader), one or two proxies
//! blackholed, proxy resets (one host, every host but the anchor), latency spikes, new
//! connections refused or accepted and left silent, a kill together with a blackhole of
//! another host, and a setData held back in the proxy until its session has moved to
//! another server, then released to the old one (the SessionMoved case).
//!
//! Invariants (any breach is a violation; the test fails if there is one):
//! - every acknowledged create exists exactly once; a create that failed with a known outcome
//!   does not exist; one with an unknown outcome exists at most once; nothing else exists;
//! - every counter's value equals its version (no increment lost or applied twice), distinct
//!   acknowledged increments got distinct versions, and
//!   `acked ≤ final version − initial ≤ acked + unknown` (so no increment reported failed
//!   with a known outcome was applied);
//! - a one-shot watch fires at most once, and fires if its node changed after registration;
//! - the persistent-recursive watch never reports more changes than happened, and in every
//!   interval between `Resync`s reports at least every acknowledged change of that interval;
//! - no session ends (expires, is taken over) during the run: a quorum is always reachable;
//! - every call returns (success or typed error) within its deadline plus slack;
//! - each worker's ephemeral node exists, owned by its session, while the session lives, and
//!   is gone once it is closed;
//! - writes with a known outcome (issue 17; each worker its own counter with
//!   `set_data_idempotent`, and `create_protected` sequential nodes): every reported outcome
//!   matches the servers' final state — the counter changed exactly as often as writes were
//!   reported applied (more only by writes that ended in a timeout), and every protected
//!   create reported done exists exactly once, none twice;
//! - never two holders of a `zk_recipes::Mutex` at once: two workers contend for one lock
//!   and a monitor samples both guards' `Hold` every 2 ms; a holder's fenced writes apply
//!   only while it holds the lock.
//!
//! `CHAOS_SEED` replays a schedule (the seed is printed first; timing on a real machine is
//! not replayed exactly). `CHAOS_SECONDS` sets how long faults are injected (default 140 s,
//! about 190 faults; the whole binary takes under three minutes; set it to hours for a
//! soak). `CHAOS_TAKEOVER_LIMIT` overrides the engine's takeover detection. The report
//! (faults, operations, violations) goes to stderr even when the test passes, and the fault
//! timeline to `$TMPDIR/chaos-timeline-<seed>.log`.
//!
//! `healed_hosts_are_retried_before_the_session_runs_out` is a deterministic regression
//! test for one failure the chaos run found.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use zk_client::{
    AddWatchMode, Client, CreateMode, Error, EventType, Op, SessionState, WatchEvent, acl,
};
use zk_recipes::Hold;
use zk_testkit::{Ensemble, HoldFilter, ProxyMode};

/// Requested session timeout (the largest the default tick of 200 ms allows).
const T: Duration = Duration::from_secs(4);
/// Every call's deadline.
const OP: Duration = Duration::from_secs(8);
/// How late a call may return past its deadline before it counts as a violation.
const LATE: Duration = Duration::from_secs(4);
const WORKERS: usize = 4;
const COUNTERS: usize = 3;
/// A one-shot watch whose node changed must fire within this.
const WATCH_FIRE: Duration = Duration::from_secs(10);

fn ctr(c: usize) -> String {
    format!("/chaos/ctr/c{c}")
}

/// xorshift64*: the fault schedule and the workload are reproducible from the seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// What everybody reports to.
#[derive(Default)]
struct Shared {
    violations: Mutex<Vec<String>>,
    /// Faults of the servers themselves, reported but not held against the client.
    anomalies: Mutex<Vec<String>>,
    faults: Mutex<BTreeMap<&'static str, u64>>,
    calls: AtomicU64,
    creates_acked: AtomicU64,
    cas_acked: AtomicU64,
    reads_ok: AtomicU64,
    retryable_errors: AtomicU64,
    oneshot_fired: AtomicU64,
    persistent_events: AtomicU64,
    resyncs: AtomicU64,
    slowest_call_ms: AtomicU64,
    started: Mutex<Option<Instant>>,
    timeline: Mutex<Vec<(f64, String)>>,
}

impl Shared {
    fn violation(&self, what: String) {
        let at = self.elapsed();
        let line = format!("[{at:7.2}s] {what}");
        let _ = writeln!(std::io::stderr(), "chaos VIOLATION {line}");
        self.violations.lock().unwrap().push(line);
    }

    /// Something the servers did wrong that no client could cause or prevent (the replicas
    /// disagree at the end): reported, not counted as a violation.
    fn anomaly(&self, what: String) {
        let at = self.elapsed();
        let line = format!("[{at:7.2}s] {what}");
        let _ = writeln!(std::io::stderr(), "chaos SERVER ANOMALY {line}");
        self.anomalies.lock().unwrap().push(line);
    }

    fn fault(&self, kind: &'static str) {
        *self.faults.lock().unwrap().entry(kind).or_default() += 1;
        self.note(kind.to_owned());
    }

    fn elapsed(&self) -> f64 {
        self.started
            .lock()
            .unwrap()
            .map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    /// Appends to the fault timeline (printed with any violation).
    fn note(&self, what: String) {
        let at = self.elapsed();
        self.timeline.lock().unwrap().push((at, what));
    }

    /// The timeline of the `window` before `at`.
    fn timeline_before(&self, at: f64, window: f64) -> String {
        self.timeline
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= at - window && *t <= at)
            .map(|(t, w)| format!("      [{t:7.2}s] {w}\n"))
            .collect()
    }

    fn faults_total(&self) -> u64 {
        self.faults.lock().unwrap().values().sum()
    }

    /// Runs one call under its deadline, checking that it returns in time.
    async fn call<R>(
        &self,
        what: &str,
        f: impl Future<Output = Result<R, Error>>,
    ) -> Option<Result<R, Error>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        match tokio::time::timeout(OP + LATE + Duration::from_secs(10), f).await {
            Ok(r) => {
                let took = start.elapsed();
                self.slowest_call_ms
                    .fetch_max(u64::try_from(took.as_millis()).unwrap(), Ordering::Relaxed);
                if took > OP + LATE {
                    self.violation(format!("{what} returned after {took:?} (deadline {OP:?})"));
                }
                if let Err(e) = &r
                    && e.is_retryable()
                {
                    self.retryable_errors.fetch_add(1, Ordering::Relaxed);
                }
                Some(r)
            }
            Err(_) => {
                self.violation(format!("{what} never returned"));
                None
            }
        }
    }
}

/// How a failed write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It may or may not have been applied.
    Unknown,
    /// It was certainly not applied.
    NotApplied,
}

fn outcome(e: &Error) -> Outcome {
    match e {
        Error::ConnectionLoss {
            outcome_unknown: true,
        }
        | Error::Timeout => Outcome::Unknown,
        // The session ended under the call: whatever happened, the state watcher reports it.
        e if e.is_terminal() => Outcome::Unknown,
        _ => Outcome::NotApplied,
    }
}

#[derive(Default, Debug)]
struct WorkerLog {
    /// Sequential creates by name prefix (`w1-17-`).
    seq_acked: Vec<(String, String)>,
    seq_unknown: Vec<String>,
    seq_not_applied: Vec<String>,
    /// Acknowledged increments: (counter, new version, mzxid).
    cas_acked: Vec<(usize, i32, i64)>,
    cas_unknown: [u64; COUNTERS],
}

/// Watches a client's state: any terminal state before `closing` is set is a violation.
fn guard_session(
    name: String,
    client: &Client,
    direct: String,
    closing: Arc<AtomicBool>,
    sh: Arc<Shared>,
) {
    let mut states = client.state_stream();
    let saved = client.saved_session();
    tokio::spawn(async move {
        loop {
            let state = states.borrow_and_update().state;
            if state.is_terminal() {
                if !closing.load(Ordering::SeqCst) {
                    let at = sh.elapsed();
                    // Ask the servers whether the session really is gone.
                    let verdict = match Client::builder(&direct)
                        .session_timeout(T)
                        .connect_timeout(Duration::from_secs(15))
                        .resume(saved)
                        .connect()
                        .await
                    {
                        Ok(probe) => {
                            probe.close().await;
                            "the servers still had the session (a false verdict of the client)"
                                .to_owned()
                        }
                        Err(Error::SessionExpired { .. }) => {
                            "the servers confirm it expired".to_owned()
                        }
                        Err(e) => format!("resuming it failed: {e}"),
                    };
                    sh.violation(format!(
                        "{name}: session ended {state:?} while a quorum was reachable; {verdict}; faults in the 15 s before:\n{}",
                        sh.timeline_before(at, 15.0)
                    ));
                }
                return;
            }
            if states.changed().await.is_err() {
                return;
            }
        }
    });
}

async fn connect(connect_string: &str) -> Client {
    let mut b = Client::builder(connect_string)
        .session_timeout(T)
        .operation_timeout(OP)
        .connect_timeout(Duration::from_secs(60));
    if let Some(limit) = takeover_limit() {
        b = b.configure_session(move |cfg| cfg.takeover_limit = limit);
    }
    b.connect().await.expect("client connects")
}

/// `CHAOS_TAKEOVER_LIMIT` overrides the engine's takeover detection (to study the other
/// invariants while a false `TakenOver` is being fixed); by default the engine's own setting.
fn takeover_limit() -> Option<u32> {
    std::env::var("CHAOS_TAKEOVER_LIMIT").ok()?.parse().ok()
}

fn counter_value(data: &[u8]) -> Option<i32> {
    std::str::from_utf8(data).ok()?.parse().ok()
}

/// One worker: a mixed workload until `stop`.
async fn worker(
    i: usize,
    client: Client,
    sh: Arc<Shared>,
    seed: u64,
    stop: watch::Receiver<bool>,
) -> WorkerLog {
    let mut rng = Rng::new(seed ^ ((i as u64 + 1) * 0x1000_0001));
    let mut log = WorkerLog::default();
    let eph = format!("/chaos/eph/w{i}");
    let mut waiters = JoinSet::new();
    let mut k = 0_u64;
    // A session that ended was reported by its guard; its calls would only fail at once.
    while !*stop.borrow() && !client.state().is_terminal() {
        k += 1;
        while waiters.try_join_next().is_some() {}
        match rng.below(100) {
            0..30 => {
                let prefix = format!("w{i}-{k}-");
                let path = format!("/chaos/seq/{prefix}");
                match sh
                    .call(
                        "create",
                        client.create(
                            &path,
                            &b"s"[..],
                            &acl::open_unsafe(),
                            CreateMode::PersistentSequential,
                        ),
                    )
                    .await
                {
                    Some(Ok(created)) => {
                        sh.creates_acked.fetch_add(1, Ordering::Relaxed);
                        let name = created.rsplit('/').next().unwrap_or_default().to_owned();
                        if !name.starts_with(&prefix) {
                            sh.violation(format!("create {path} returned {created}"));
                        }
                        log.seq_acked.push((prefix, name));
                    }
                    Some(Err(e)) => match outcome(&e) {
                        Outcome::Unknown => log.seq_unknown.push(prefix),
                        Outcome::NotApplied => log.seq_not_applied.push(prefix),
                    },
                    None => log.seq_unknown.push(prefix),
                }
            }
            30..65 => {
                let c = rng.below(COUNTERS);
                let path = ctr(c);
                let Some(Ok((data, stat))) = sh.call("get_data", client.get_data(&path)).await
                else {
                    continue;
                };
                sh.reads_ok.fetch_add(1, Ordering::Relaxed);
                let n = counter_value(&data);
                if n != Some(stat.version) {
                    sh.violation(format!("{path}: value {n:?} at version {}", stat.version));
                    continue;
                }
                let next = (stat.version + 1).to_string();
                match sh
                    .call(
                        "set_data",
                        client.set_data(&path, next.into_bytes(), stat.version),
                    )
                    .await
                {
                    Some(Ok(new)) => {
                        sh.cas_acked.fetch_add(1, Ordering::Relaxed);
                        if new.version != stat.version + 1 {
                            sh.violation(format!(
                                "{path}: CAS at {} acknowledged with version {}",
                                stat.version, new.version
                            ));
                        }
                        log.cas_acked.push((c, new.version, new.mzxid));
                    }
                    Some(Err(e)) => {
                        if outcome(&e) == Outcome::Unknown {
                            log.cas_unknown[c] += 1;
                        }
                    }
                    None => log.cas_unknown[c] += 1,
                }
            }
            65..75 if waiters.len() < 6 => {
                let c = rng.below(COUNTERS);
                let path = ctr(c);
                let set = if rng.below(2) == 0 {
                    sh.call("get_data_watch", client.get_data_watch(&path))
                        .await
                        .map(|r| r.map(|(_, stat, w)| (stat.version, w)))
                } else {
                    sh.call("exists_watch", client.exists_watch(&path))
                        .await
                        .map(|r| r.map(|(stat, w)| (stat.map_or(-1, |s| s.version), w)))
                };
                if let Some(Ok((version, w))) = set {
                    sh.reads_ok.fetch_add(1, Ordering::Relaxed);
                    waiters.spawn(oneshot_waiter(
                        client.clone(),
                        path,
                        version,
                        w,
                        Arc::clone(&sh),
                        stop.clone(),
                    ));
                }
            }
            75..88 => {
                let c = rng.below(COUNTERS);
                if let Some(Ok(children)) = sh
                    .call("get_children", client.get_children("/chaos/ctr"))
                    .await
                {
                    sh.reads_ok.fetch_add(1, Ordering::Relaxed);
                    if children.len() != COUNTERS {
                        sh.violation(format!("/chaos/ctr has children {children:?}"));
                    }
                }
                if let Some(Ok((data, stat))) = sh.call("get_data", client.get_data(&ctr(c))).await
                {
                    sh.reads_ok.fetch_add(1, Ordering::Relaxed);
                    if counter_value(&data) != Some(stat.version) {
                        sh.violation(format!(
                            "{}: value {data:?} at version {}",
                            ctr(c),
                            stat.version
                        ));
                    }
                }
            }
            _ => match sh.call("exists", client.exists(&eph)).await {
                Some(Ok(Some(stat))) => {
                    sh.reads_ok.fetch_add(1, Ordering::Relaxed);
                    if stat.ephemeral_owner != client.session_id() {
                        sh.violation(format!(
                            "{eph} owned by {:#x}, not {:#x}",
                            stat.ephemeral_owner,
                            client.session_id()
                        ));
                    }
                }
                Some(Ok(None)) if !client.state().is_terminal() => {
                    sh.violation(format!(
                        "{eph} vanished while session {:#x} lives",
                        client.session_id()
                    ));
                }
                _ => {}
            },
        }
        tokio::time::sleep(rng.ms(2, 12)).await;
    }
    while waiters.join_next().await.is_some() {}
    log
}

/// Resolves once the stop flag is set.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Waits for a one-shot watch: at most one node event, and one if the node changed.
async fn oneshot_waiter(
    client: Client,
    path: String,
    version: i32,
    mut w: zk_client::OneshotWatcher,
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let registered = Instant::now();
    let mut node_events = 0;
    let mut ended = false;
    let mut checked_at_stop = false;
    loop {
        let deadline = tokio::time::Instant::from_std(registered + WATCH_FIRE);
        tokio::select! {
            ev = w.next_event() => match ev {
                Some(ev) if !ev.is_session_event() => {
                    node_events += 1;
                    if ev.event_type != EventType::NodeDataChanged {
                        sh.violation(format!("one-shot watch on {path}: unexpected {:?}", ev.event_type));
                    }
                }
                Some(ev) if ev.is_terminal() => { ended = true; }
                Some(_) => {}
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
            () = stopped(&mut stop), if !checked_at_stop => {
                checked_at_stop = true;
                // Writers are stopping: if the node has not changed, nothing is to come.
                if let Some(Ok((_, stat))) = sh.call("get_data", client.get_data(&path)).await
                    && stat.version == version
                {
                    return;
                }
            }
        }
    }
    if node_events > 1 {
        sh.violation(format!(
            "one-shot watch on {path} fired {node_events} times"
        ));
    }
    if node_events == 1 {
        sh.oneshot_fired.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if ended || client.state().is_terminal() {
        return;
    }
    if let Some(Ok((_, stat))) = sh.call("get_data", client.get_data(&path)).await
        && stat.version != version
    {
        // The node changed: its event may still be on its way (a fault right now).
        let grace = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match w.next_event().await {
                    Some(ev) if !ev.is_session_event() => return true,
                    Some(ev) if ev.is_terminal() => return true,
                    Some(_) => {}
                    None => return false,
                }
            }
        });
        if grace.await == Ok(true) {
            sh.oneshot_fired.fetch_add(1, Ordering::Relaxed);
            return;
        }
        sh.violation(format!(
            "one-shot watch on {path} (version {version}) silent for {WATCH_FIRE:?} though the node is at version {}",
            stat.version
        ));
    }
}

/// Per counter: events between two `Resync`s.
#[derive(Debug, Clone)]
struct Segment {
    /// Changes with a zxid above this must be reported in this segment...
    from: i64,
    /// ...up to this one (the last zxid seen before the next gap), if a gap followed.
    to: Option<i64>,
    events: [u64; COUNTERS],
}

#[derive(Debug, Default)]
struct WatchLog {
    initial_versions: [i32; COUNTERS],
    segments: Vec<Segment>,
}

impl WatchLog {
    /// The session ended: the last segment covers what the client had seen by then.
    fn end(&mut self, last_zxid: i64) {
        if let Some(last) = self.segments.last_mut()
            && last.to.is_none()
        {
            last.to = Some(last_zxid);
        }
    }
}

/// The persistent-recursive watcher over the counters.
async fn persistent_watcher(
    client: Client,
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> WatchLog {
    let mut log = WatchLog::default();
    for c in 0..COUNTERS {
        log.initial_versions[c] = client
            .get_data(&ctr(c))
            .await
            .expect("initial read")
            .1
            .version;
    }
    let mut w = client
        .add_watch("/chaos/ctr", AddWatchMode::PersistentRecursive)
        .await
        .expect("add_watch");
    log.segments.push(Segment {
        from: client.last_zxid(),
        to: None,
        events: [0; COUNTERS],
    });
    let _ = ready.send(());
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut quiet_since: Option<Instant> = None;
    loop {
        tokio::select! {
            ev = w.next() => {
                quiet_since = quiet_since.map(|_| Instant::now());
                match ev {
                    Some(WatchEvent::Event(e)) if e.event_type == EventType::NodeDataChanged => {
                        let Some(c) = (0..COUNTERS).find(|&c| ctr(c) == e.path) else {
                            sh.violation(format!("persistent watch: change of {}", e.path));
                            continue;
                        };
                        sh.persistent_events.fetch_add(1, Ordering::Relaxed);
                        log.segments.last_mut().unwrap().events[c] += 1;
                    }
                    Some(WatchEvent::Event(e)) if e.is_session_event() => {
                        if e.is_terminal() {
                            log.end(client.last_zxid());
                            break;
                        }
                    }
                    Some(WatchEvent::Event(e)) => {
                        sh.violation(format!("persistent watch: unexpected {:?} on {}", e.event_type, e.path));
                    }
                    Some(WatchEvent::Resync { from_zxid, to_zxid }) => {
                        sh.resyncs.fetch_add(1, Ordering::Relaxed);
                        log.segments.last_mut().unwrap().to = Some(from_zxid);
                        log.segments.push(Segment { from: to_zxid, to: None, events: [0; COUNTERS] });
                    }
                    Some(_) => {}
                    None => {
                        log.end(client.last_zxid());
                        break;
                    }
                }
            }
            _ = tick.tick() => {
                // Keep the last zxid fresh, so gaps are measured from recent history.
                let _ = sh.call("exists", client.exists("/chaos")).await;
                if let Some(q) = quiet_since && q.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
            () = stopped(&mut stop), if quiet_since.is_none() => {
                quiet_since = Some(Instant::now());
            }
        }
    }
    log
}

/// Which proxy (= node index) a client is on.
fn proxy_of(ens: &Ensemble, client: &Client) -> Option<usize> {
    let addr = client.server()?;
    ens.proxies().iter().position(|p| p.addr() == addr)
}

/// Waits until every node serves again. A restarted server that never rejoins the election
/// (a ZooKeeper 3.8 behaviour, see `Ensemble::wait_serving_restarting_stuck`) is restarted
/// once more after 30 s; for the clients that is just one more fault.
async fn serving(ens: &Ensemble) {
    let restarted = ens
        .wait_serving_restarting_stuck(Duration::from_secs(30), Duration::from_secs(120))
        .await
        .expect("the ensemble serves again after a fault (test infrastructure)");
    if !restarted.is_empty() {
        eprintln!("chaos: nodes {restarted:?} did not rejoin after a restart; restarted again");
    }
}

/// What is impaired right now, and the anchor: one host no fault may touch, so a client
/// always has a stable place to go ("a quorum reachable in time"). Without an anchor a quick
/// succession of faults, each leaving a *different* single host usable, can keep a client
/// chasing the usable host for longer than a session lives. The anchor moves every few
/// seconds, between faults.
#[derive(Default)]
struct Impaired {
    node: Option<usize>,
    proxies: Vec<usize>,
    anchor: usize,
    anchored_at: Option<Instant>,
}

/// How long one host stays the anchor.
const ANCHOR_FOR: Duration = Duration::from_secs(8);

impl Impaired {
    fn allows(&self, node: Option<usize>, proxies: &[usize], n: usize) -> bool {
        let node = node.or(self.node);
        let touched =
            |h: usize| Some(h) == node || self.proxies.contains(&h) || proxies.contains(&h);
        !touched(self.anchor) && (0..n).any(|h| !touched(h))
    }

    /// Moves the anchor (only while nothing is impaired).
    fn rotate(&mut self, rng: &mut Rng, n: usize) {
        let due = self.anchored_at.is_none_or(|at| at.elapsed() >= ANCHOR_FOR);
        if due && self.node.is_none() && self.proxies.is_empty() {
            self.anchor = rng.below(n);
            self.anchored_at = Some(Instant::now());
        }
    }
}

/// Reserves `node` and `proxies` for a fault if the rule above allows it.
fn reserve(imp: &Mutex<Impaired>, node: Option<usize>, proxies: &[usize], n: usize) -> bool {
    let mut imp = imp.lock().unwrap();
    if (node.is_some() && imp.node.is_some()) || !imp.allows(node, proxies, n) {
        return false;
    }
    if node.is_some() {
        imp.node = node;
    }
    imp.proxies.extend_from_slice(proxies);
    true
}

fn release(imp: &Mutex<Impaired>, node: Option<usize>, proxies: &[usize]) {
    let mut imp = imp.lock().unwrap();
    if node.is_some() {
        imp.node = None;
    }
    for p in proxies {
        if let Some(at) = imp.proxies.iter().position(|x| x == p) {
            imp.proxies.swap_remove(at);
        }
    }
}

/// Node faults, one at a time: kill −9 and restart, freeze and thaw; each healed (serving
/// again) before the next.
async fn node_faults(
    ens: &Ensemble,
    workers: &[Client],
    sh: &Shared,
    imp: &Mutex<Impaired>,
    seed: u64,
    until: Instant,
) {
    let mut rng = Rng::new(seed ^ 0x6e6f_6465);
    let n = ens.nodes().len();
    while Instant::now() < until {
        tokio::time::sleep(rng.ms(200, 1500)).await;
        let pick = rng.below(100);
        let target = match pick {
            0..30 | 80.. => Some(rng.below(n)),
            30..55 | 65..80 => ens.leader().await,
            _ => proxy_of(ens, &workers[rng.below(workers.len())]),
        };
        let Some(i) = target else { continue };
        // The compound fault also darkens another host's proxy.
        let dark = (pick >= 80).then(|| (i + 1 + rng.below(n - 1)) % n);
        let dark_list: Vec<usize> = dark.into_iter().collect();
        if !reserve(imp, Some(i), &dark_list, n) {
            continue;
        }
        sh.note(format!("node {i} (proxy dark: {dark:?}):"));
        match pick {
            0..55 => {
                ens.node(i).kill().unwrap();
                sh.fault(if pick < 30 {
                    "kill -9 (any node)"
                } else {
                    "kill -9 (leader)"
                });
                tokio::time::sleep(rng.ms(200, 1200)).await;
                ens.node(i).restart().await.unwrap();
            }
            55..80 => {
                ens.node(i).freeze();
                sh.fault(if pick < 65 {
                    "freeze (a client's server)"
                } else {
                    "freeze (leader)"
                });
                tokio::time::sleep(rng.ms(300, 2500)).await;
                ens.node(i).thaw();
            }
            _ => {
                let d = dark.unwrap_or(i);
                ens.node(i).kill().unwrap();
                ens.proxy(d).unwrap().set_mode(ProxyMode::Blackhole);
                sh.fault("kill -9 + blackhole of another host");
                tokio::time::sleep(rng.ms(300, 1500)).await;
                ens.proxy(d).unwrap().set_mode(ProxyMode::Pass);
                ens.node(i).restart().await.unwrap();
            }
        }
        sh.note(format!("node {i}: healed, waiting until every node serves"));
        serving(ens).await;
        sh.note(format!("node {i}: serving again"));
        release(imp, Some(i), &dark_list);
    }
}

/// Proxy faults, one at a time, concurrent with the node faults.
async fn proxy_faults(
    ens: &Ensemble,
    workers: &[Client],
    sh: &Shared,
    imp: &Mutex<Impaired>,
    seed: u64,
    until: Instant,
) {
    let mut rng = Rng::new(seed ^ 0x7072_6f78);
    let n = ens.nodes().len();
    while Instant::now() < until {
        tokio::time::sleep(rng.ms(10, 150)).await;
        {
            let mut imp = imp.lock().unwrap();
            let before = imp.anchored_at;
            imp.rotate(&mut rng, n);
            if imp.anchored_at != before {
                sh.note(format!("anchor: host {} (no fault touches it)", imp.anchor));
            }
        }
        let pick = rng.below(100);
        let i = rng.below(n);
        match pick {
            0..18 => {
                if imp.lock().unwrap().anchor == i {
                    continue;
                }
                ens.proxy(i).unwrap().reset_all();
                sh.note(format!("proxy {i}:"));
                sh.fault("reset one host's connections");
                continue;
            }
            18..22 => {
                let anchor = imp.lock().unwrap().anchor;
                for (h, p) in ens.proxies().iter().enumerate() {
                    if h != anchor {
                        p.reset_all();
                    }
                }
                sh.note(format!("every proxy but {anchor}:"));
                sh.fault("reset every other host's connections");
                continue;
            }
            22..27 => {
                session_moved(ens, workers, sh, rng.below(workers.len())).await;
                continue;
            }
            _ => {}
        }
        let targets: Vec<usize> = if (27..42).contains(&pick) {
            (0..n).filter(|&h| h != i).collect()
        } else {
            vec![i]
        };
        if !reserve(imp, None, &targets, n) {
            continue;
        }
        sh.note(format!("proxies {targets:?}:"));
        let hold = rng.ms(100, 1200);
        match pick {
            27..42 => {
                for &h in &targets {
                    ens.proxy(h).unwrap().set_mode(ProxyMode::Blackhole);
                }
                sh.fault("blackhole two hosts at once");
                tokio::time::sleep(hold).await;
                for &h in &targets {
                    ens.proxy(h).unwrap().set_mode(ProxyMode::Pass);
                }
            }
            42..60 => {
                ens.proxy(i).unwrap().set_mode(ProxyMode::Blackhole);
                sh.fault("blackhole one host");
                tokio::time::sleep(hold).await;
                ens.proxy(i).unwrap().set_mode(ProxyMode::Pass);
            }
            60..75 => {
                let lat = rng.ms(50, 700);
                ens.proxy(i).unwrap().set_latency(lat, lat);
                sh.fault("latency spike");
                tokio::time::sleep(hold).await;
                ens.proxy(i)
                    .unwrap()
                    .set_latency(Duration::ZERO, Duration::ZERO);
            }
            75..88 => {
                let p = ens.proxy(i).unwrap();
                p.set_mode(ProxyMode::RefuseNew);
                p.reset_all();
                sh.fault("connections refused");
                tokio::time::sleep(hold).await;
                p.set_mode(ProxyMode::Pass);
            }
            _ => {
                let p = ens.proxy(i).unwrap();
                p.set_mode(ProxyMode::AcceptSilent);
                p.reset_all();
                sh.fault("accepted and silent");
                tokio::time::sleep(hold).await;
                p.set_mode(ProxyMode::Pass);
            }
        }
        sh.note(format!("proxies {targets:?}: healed"));
        release(imp, None, &targets);
    }
}

/// Runs both fault schedules until `until`, then heals everything.
async fn fault_schedule(
    ens: &Ensemble,
    workers: &[Client],
    sh: &Shared,
    seed: u64,
    until: Instant,
) {
    let imp = Mutex::new(Impaired::default());
    tokio::join!(
        node_faults(ens, workers, sh, &imp, seed, until),
        proxy_faults(ens, workers, sh, &imp, seed, until)
    );
    // The test kit's heal: proxies back to pass, nodes thawed and restarted, every node
    // serving (a node that never rejoins restarted again) with one leader.
    let restarted = ens
        .heal()
        .await
        .expect("the ensemble heals after the faults (test infrastructure)");
    sh.note(format!("healed; restarted {restarted:?}"));
}

/// Holds a setData in the proxy until the clients on that connection moved to another
/// server, then releases it to the old server (which, on 3.8, closes the connection without
/// applying it: the SessionMoved case).
async fn session_moved(ens: &Ensemble, workers: &[Client], sh: &Shared, start: usize) {
    let Some(i) = workers
        .iter()
        .cycle()
        .skip(start % workers.len())
        .take(workers.len())
        .find_map(|w| proxy_of(ens, w))
    else {
        return;
    };
    let proxy = ens.proxy(i).unwrap();
    let held = proxy.hold_next_frame_matching(HoldFilter::opcode(5));
    if !held.wait_captured(Duration::from_secs(3)).await {
        return; // Dropping the handle disarms it.
    }
    sh.note(format!("proxy {i}: setData captured and held"));
    // The connection is stalled client→server (pings queue behind the frame): its client
    // detects the silence and moves. Wait until nobody is on that proxy any more.
    let moved = Instant::now() + Duration::from_secs(6);
    while Instant::now() < moved
        && workers
            .iter()
            .any(|w| proxy_of(ens, w) == Some(i) && w.state() == SessionState::Connected)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    held.release();
    sh.note(format!("proxy {i}: held setData released"));
    if held.wait_forwarded(Duration::from_secs(2)).await {
        sh.fault("held setData released after the session moved");
    } else {
        sh.fault("held setData dropped with its connection");
    }
}

fn seed() -> u64 {
    match std::env::var("CHAOS_SEED") {
        Ok(s) => {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse(), |h| u64::from_str_radix(h, 16))
                .expect("CHAOS_SEED is a number")
        }
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

fn seconds() -> u64 {
    std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(140)
}

/// The tests of this binary each run a 3-node ensemble: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn chaos() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    init_tracing();
    let seed = seed();
    let secs = seconds();
    let _ = writeln!(
        std::io::stderr(),
        "chaos: seed={seed} (replay: CHAOS_SEED={seed}), faults for {secs} s"
    );
    let rt = runtime();
    let limit = Duration::from_secs(secs + 240);
    rt.block_on(async move {
        tokio::time::timeout(limit, run(seed, secs))
            .await
            .unwrap_or_else(|_| panic!("chaos run (seed {seed}) did not finish within {limit:?}"));
    });
}

/// Two hosts blackholed while the third is in a leader election (it accepts and closes
/// every connection, as an electing ZooKeeper server does): the client fails on all three.
/// Then the two come back (their servers never stopped; nothing expired on the server side)
/// while the third keeps electing. The session must be back on one of the two well before it
/// runs out of time.
///
/// Found by the chaos run (sessions ended `Expired { by: Local }`, and pauses of 3–5 s, while
/// two healthy servers were reachable): a host that timed out or went silent is penalised for
/// 5 s (doubling, up to 30 s) — as long as the session can live without contact (`4T/3` =
/// 5.3 s at T = 4 s) — and while every host is penalised the provider picks the one whose
/// penalty ends first: the electing host, penalised 25–250 ms per refusal. So the healed hosts
/// are not tried again until their penalties run out, after the session expired locally.
#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn healed_hosts_are_retried_before_the_session_runs_out() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    init_tracing();
    runtime().block_on(async {
        let ens = Ensemble::builder()
            .nodes(3)
            .proxies(true)
            .start()
            .await
            .expect("ensemble");
        // The third "server" is electing: it accepts and closes every connection.
        let electing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let electing_addr = electing.local_addr().unwrap();
        let election = tokio::spawn(async move {
            while let Ok((s, _)) = electing.accept().await {
                drop(s);
            }
        });
        let (x, y) = (ens.proxy(0).unwrap(), ens.proxy(1).unwrap());
        let cs = format!("{},{},{electing_addr}", x.addr(), y.addr());
        let c = Client::builder(&cs)
            .session_timeout(T)
            .operation_timeout(OP)
            .connect()
            .await
            .unwrap();
        let id = c.session_id();
        x.set_mode(ProxyMode::Blackhole);
        y.set_mode(ProxyMode::Blackhole);
        // The client notices the silence (T/3) and tries every host.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_ne!(c.state(), SessionState::Connected);
        x.set_mode(ProxyMode::Pass);
        y.set_mode(ProxyMode::Pass);
        let healed = Instant::now();
        let state = c.wait_connected(Duration::from_secs(6)).await;
        let took = healed.elapsed();
        let counters = c.counters().session;
        election.abort();
        assert_eq!(
            state,
            SessionState::Connected,
            "two healthy servers were back, yet the session ended as {state:?} ({counters:?})"
        );
        assert!(
            took < Duration::from_secs(2),
            "back only {took:?} after two servers healed ({counters:?})"
        );
        assert_eq!(c.session_id(), id);
        c.close().await;
    });
}

async fn run(seed: u64, secs: u64) {
    let sh = Arc::new(Shared::default());
    let ens = Ensemble::builder()
        .nodes(3)
        .proxies(true)
        .start()
        .await
        .expect("ensemble");
    let cs = ens.connect_string();

    // Layout.
    let setup = connect(&ens.direct_connect_string()).await;
    for p in [
        "/chaos",
        "/chaos/seq",
        "/chaos/ctr",
        "/chaos/eph",
        "/chaos/known",
        "/chaos/prot",
        "/chaos/lockctr",
    ] {
        setup
            .create(p, &b""[..], &acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
    }
    // The CAS counters and the known-outcome writers' counters start at "0".
    let counters = (0..COUNTERS).map(ctr).chain((0..WORKERS).map(known_path));
    for path in counters {
        setup
            .create(
                &path,
                &b"0"[..],
                &acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
    }
    setup.close().await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = Vec::new();
    let mut closing = Vec::new();
    for i in 0..WORKERS {
        let client = connect(&cs).await;
        client
            .create(
                &format!("/chaos/eph/w{i}"),
                &b""[..],
                &acl::open_unsafe(),
                CreateMode::Ephemeral,
            )
            .await
            .unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        guard_session(
            format!("worker {i}"),
            &client,
            ens.direct_connect_string(),
            Arc::clone(&flag),
            Arc::clone(&sh),
        );
        closing.push(flag);
        workers.push(client);
    }
    let watcher_client = connect(&cs).await;
    let watcher_closing = Arc::new(AtomicBool::new(false));
    guard_session(
        "watcher".into(),
        &watcher_client,
        ens.direct_connect_string(),
        Arc::clone(&watcher_closing),
        Arc::clone(&sh),
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(persistent_watcher(
        watcher_client.clone(),
        Arc::clone(&sh),
        stop_rx.clone(),
        ready_tx,
    ));
    ready_rx.await.unwrap();

    *sh.started.lock().unwrap() = Some(Instant::now());
    let mut tasks = Vec::new();
    for (i, client) in workers.iter().enumerate() {
        tasks.push(tokio::spawn(worker(
            i,
            client.clone(),
            Arc::clone(&sh),
            seed,
            stop_rx.clone(),
        )));
    }

    let mut known_tasks = Vec::new();
    for (i, client) in workers.iter().enumerate() {
        known_tasks.push(tokio::spawn(known_writer(
            i,
            client.clone(),
            Arc::clone(&sh),
            seed,
            stop_rx.clone(),
        )));
    }
    let holds: Arc<Mutex<[Option<watch::Receiver<Hold>>; 2]>> = Arc::default();
    let mut lock_tasks = Vec::new();
    for (j, client) in workers.iter().take(2).enumerate() {
        lock_tasks.push(tokio::spawn(lock_contender(
            j,
            client.clone(),
            Arc::clone(&sh),
            Arc::clone(&holds),
            seed,
            stop_rx.clone(),
        )));
    }
    let monitor = tokio::spawn(lock_monitor(
        Arc::clone(&sh),
        Arc::clone(&holds),
        stop_rx.clone(),
    ));

    let until = Instant::now() + Duration::from_secs(secs);
    fault_schedule(&ens, &workers, &sh, seed, until).await;
    // Let the clients settle on the healed ensemble, then stop the workload.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_tx.send(true).unwrap();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("worker task"));
    }
    let watch_log = watcher.await.expect("watcher task");
    let mut known_logs = Vec::new();
    for t in known_tasks {
        known_logs.push(t.await.expect("known-outcome writer"));
    }
    let mut lock_logs = Vec::new();
    for t in lock_tasks {
        lock_logs.push(t.await.expect("lock contender"));
    }
    let samples = monitor.await.expect("lock monitor");

    // ----- The servers' final state -----
    let observer = connect(&ens.direct_connect_string()).await;
    catch_up(&observer).await;
    let children = observer.get_children("/chaos/seq").await.unwrap();
    let mut finals = [(0_i32, 0_i32); COUNTERS];
    for (c, f) in finals.iter_mut().enumerate() {
        let (data, stat) = observer.get_data(&ctr(c)).await.unwrap();
        *f = (counter_value(&data).unwrap_or(-1), stat.version);
    }

    // Each replica's own view, to tell a node the ensemble lost from one that a diverged
    // replica (the observer's) lacks.
    // Listed twice when they disagree: a replica that lacks nodes only in the first pass was
    // behind in time (writes still landing), not diverged.
    let mut replicas = replica_listings(&ens).await;
    if replicas.windows(2).any(|w| w[0].1 != w[1].1) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let again = replica_listings(&ens).await;
        let sizes =
            |r: &[(usize, Vec<String>)]| -> Vec<usize> { r.iter().map(|(_, c)| c.len()).collect() };
        let _ = writeln!(
            std::io::stderr(),
            "chaos: replica listings of /chaos/seq disagreed ({:?}); 2 s later: {:?}; the observer saw {}",
            sizes(&replicas),
            sizes(&again),
            children.len()
        );
        replicas = again;
    }
    check_creates(&sh, &logs, &children, &replicas);
    check_counters(&sh, &logs, &finals);
    check_persistent_watch(&sh, &logs, &watch_log, &finals);
    let known = check_known(&sh, &observer, &known_logs).await;
    let lock = check_lock(&sh, &observer, &lock_logs, samples).await;

    // Ephemerals: present and owned while the sessions live; gone once they are closed.
    for (i, client) in workers.iter().enumerate() {
        if client.state().is_terminal() {
            continue; // Reported when it ended.
        }
        let path = format!("/chaos/eph/w{i}");
        match observer.exists(&path).await.unwrap() {
            Some(stat) if stat.ephemeral_owner == client.session_id() => {}
            other => sh.violation(format!(
                "{path} at the end: {other:?}, session {:#x} state {:?}",
                client.session_id(),
                client.state()
            )),
        }
    }
    for (client, flag) in workers.iter().zip(&closing) {
        flag.store(true, Ordering::SeqCst);
        client.close().await;
    }
    watcher_closing.store(true, Ordering::SeqCst);
    watcher_client.close().await;
    let left = observer.get_children("/chaos/eph").await.unwrap();
    if !left.is_empty() {
        sh.violation(format!(
            "ephemerals left after their sessions closed: {left:?}"
        ));
    }

    // ----- Report -----
    let reconnects: u64 = workers
        .iter()
        .map(|w| w.counters().session.reconnects)
        .sum();
    let failovers: u64 = workers.iter().map(|w| w.counters().session.failovers).sum();
    let max_pause = workers
        .iter()
        .filter_map(|w| w.counters().session.max_pause)
        .max()
        .unwrap_or_default();
    let violations = sh.violations.lock().unwrap().clone();
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "chaos report (seed {seed}, {secs} s of faults, takeover limit {})",
        takeover_limit().map_or_else(|| "default".to_owned(), |l| l.to_string())
    );
    let _ = writeln!(out, "  faults injected: {}", sh.faults_total());
    for (kind, n) in sh.faults.lock().unwrap().iter() {
        let _ = writeln!(out, "    {n:5}  {kind}");
    }
    let acked = sh.creates_acked.load(Ordering::Relaxed)
        + sh.cas_acked.load(Ordering::Relaxed)
        + sh.reads_ok.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "  operations acknowledged: {acked} (creates {}, CAS increments {}, reads {}) of {} calls",
        sh.creates_acked.load(Ordering::Relaxed),
        sh.cas_acked.load(Ordering::Relaxed),
        sh.reads_ok.load(Ordering::Relaxed),
        sh.calls.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "  watch events checked: {} one-shot fired, {} persistent, {} resyncs",
        sh.oneshot_fired.load(Ordering::Relaxed),
        sh.persistent_events.load(Ordering::Relaxed),
        sh.resyncs.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "    retryable errors {}, slowest call {} ms, worker reconnects {reconnects} (failovers {failovers}), longest pause {max_pause:?}",
        sh.retryable_errors.load(Ordering::Relaxed),
        sh.slowest_call_ms.load(Ordering::Relaxed),
    );
    let _ = writeln!(out, "  {known}");
    let _ = writeln!(out, "  {lock}");
    let anomalies = sh.anomalies.lock().unwrap().clone();
    if !anomalies.is_empty() {
        let _ = writeln!(
            out,
            "  server anomalies (not the client's): {}",
            anomalies.len()
        );
        for a in &anomalies {
            let _ = writeln!(out, "    {a}");
        }
    }
    let _ = writeln!(out, "  violations: {}", violations.len());
    for v in &violations {
        let _ = writeln!(out, "    {v}");
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    let timeline: String = sh
        .timeline
        .lock()
        .unwrap()
        .iter()
        .map(|(t, w)| format!("[{t:8.2}s] {w}\n"))
        .collect();
    let path = std::env::temp_dir().join(format!("chaos-timeline-{seed}.log"));
    if std::fs::write(&path, timeline).is_ok() {
        let _ = writeln!(std::io::stderr(), "  fault timeline: {}", path.display());
    }
    assert!(sh.faults_total() > 0, "no fault was injected");
    assert!(
        violations.is_empty(),
        "{} violations (seed {seed}):\n{out}",
        violations.len()
    );
}

/// Makes `c`'s later reads see every write acknowledged before the call, on any server.
/// A `sync` does not on the leader: ZooKeeper 3.8 serves it there as a plain read that can
/// overtake commits not applied yet. A no-op write (check-only multi) is applied in zxid
/// order everywhere and the session's reads wait for it. Unlike a read it is not re-sent
/// after a connection loss, so it is retried here (it changes nothing).
async fn catch_up(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.multi(vec![Op::check("/chaos", -1)]).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("check-only multi as a read barrier: {e:?}"),
        }
    }
}

/// Every node's own sorted listing of `/chaos/seq`, each after a read barrier on that node.
async fn replica_listings(ens: &Ensemble) -> Vec<(usize, Vec<String>)> {
    let mut replicas = Vec::new();
    for (i, node) in ens.nodes().iter().enumerate() {
        let c = connect(&node.client_addr().to_string()).await;
        catch_up(&c).await;
        let mut children = c.get_children("/chaos/seq").await.unwrap();
        children.sort();
        replicas.push((i, children));
        c.close().await;
    }
    replicas
}

/// `children` is the observer's view of `/chaos/seq`; `replicas` every node's own, sorted,
/// by index.
fn check_creates(
    sh: &Shared,
    logs: &[WorkerLog],
    children: &[String],
    replicas: &[(usize, Vec<String>)],
) {
    let holders = |name: &str| -> Vec<usize> {
        replicas
            .iter()
            .filter(|(_, ch)| ch.iter().any(|c| c == name))
            .map(|(i, _)| *i)
            .collect()
    };
    let diverged = replicas.windows(2).any(|w| w[0].1 != w[1].1);
    if diverged {
        let sizes: Vec<(usize, usize)> = replicas.iter().map(|(i, c)| (*i, c.len())).collect();
        sh.anomaly(format!(
            "the replicas disagree on /chaos/seq after a read barrier on each (node, \
             children): {sizes:?}"
        ));
    }
    // Name prefix "w{i}-{k}-" → how many nodes carry it.
    let mut found: HashMap<String, Vec<&String>> = HashMap::new();
    for name in children {
        let prefix = match name.rfind('-') {
            Some(at) => name[..=at].to_owned(),
            None => name.clone(),
        };
        found.entry(prefix).or_default().push(name);
    }
    let mut explained = 0;
    for log in logs {
        for (prefix, name) in &log.seq_acked {
            explained += 1;
            match found.get(prefix).map(Vec::as_slice) {
                Some([one]) if *one == name => {}
                None if diverged && !holders(name).is_empty() => sh.anomaly(format!(
                    "acknowledged create {name}: missing on the observer's server, held by \
                     nodes {:?} (ZooKeeper replicas diverged)",
                    holders(name)
                )),
                other => sh.violation(format!(
                    "acknowledged create {name}: found {other:?}, on nodes {:?}",
                    holders(name)
                )),
            }
        }
        for prefix in &log.seq_unknown {
            let n = found.get(prefix).map_or(0, Vec::len);
            explained += n;
            if n > 1 {
                sh.violation(format!(
                    "create {prefix} (outcome unknown) applied {n} times"
                ));
            }
        }
        for prefix in &log.seq_not_applied {
            if let Some(names) = found.get(prefix) {
                explained += names.len();
                sh.violation(format!(
                    "create {prefix} failed with a known outcome but exists: {names:?}"
                ));
            }
        }
    }
    if explained != children.len() && !diverged {
        sh.violation(format!(
            "{} sequential nodes, {explained} explained by the clients' logs",
            children.len()
        ));
    }
}

fn check_counters(sh: &Shared, logs: &[WorkerLog], finals: &[(i32, i32); COUNTERS]) {
    for (c, &(value, version)) in finals.iter().enumerate() {
        if value != version {
            sh.violation(format!(
                "{}: final value {value} at version {version}",
                ctr(c)
            ));
        }
        let mut versions: Vec<i32> = logs
            .iter()
            .flat_map(|l| l.cas_acked.iter().filter(|a| a.0 == c).map(|a| a.1))
            .collect();
        versions.sort_unstable();
        let acked = versions.len();
        versions.dedup();
        if versions.len() != acked {
            sh.violation(format!(
                "{}: two acknowledged increments share a version",
                ctr(c)
            ));
        }
        if versions.last().is_some_and(|&v| v > version) {
            sh.violation(format!(
                "{}: acknowledged version above the final {version}",
                ctr(c)
            ));
        }
        let unknown: u64 = logs.iter().map(|l| l.cas_unknown[c]).sum();
        let applied = u64::try_from(version).unwrap();
        let acked = acked as u64;
        if applied < acked || applied > acked + unknown {
            sh.violation(format!(
                "{}: {applied} increments applied, {acked} acknowledged, {unknown} with unknown outcome",
                ctr(c)
            ));
        }
    }
}

fn check_persistent_watch(
    sh: &Shared,
    logs: &[WorkerLog],
    w: &WatchLog,
    finals: &[(i32, i32); COUNTERS],
) {
    for (c, &(_, final_version)) in finals.iter().enumerate() {
        let total: u64 = w.segments.iter().map(|s| s.events[c]).sum();
        let happened = u64::try_from(final_version - w.initial_versions[c]).unwrap_or(0);
        if total > happened {
            sh.violation(format!(
                "{}: persistent watch reported {total} changes, {happened} happened",
                ctr(c)
            ));
        }
        for (k, seg) in w.segments.iter().enumerate() {
            let must = logs
                .iter()
                .flat_map(|l| l.cas_acked.iter())
                .filter(|a| a.0 == c && a.2 > seg.from && seg.to.is_none_or(|to| a.2 <= to))
                .count() as u64;
            if seg.events[c] < must {
                sh.violation(format!(
                    "{}: persistent watch segment {k} (zxid {:#x}..{:?}) reported {} changes, {must} acknowledged in it",
                    ctr(c),
                    seg.from,
                    seg.to.map(|t| format!("{t:#x}")),
                    seg.events[c]
                ));
            }
        }
    }
}

// ----- Writes with a known outcome, and the lock (issue 17) -----

fn known_path(i: usize) -> String {
    format!("/chaos/known/k{i}")
}

#[derive(Default, Debug)]
struct KnownLog {
    /// `set_data_idempotent` calls that returned success.
    sets_applied: u64,
    /// Those that ended in a timeout or with the session (the only unknowns left).
    sets_unknown: u64,
    /// The data of the last one reported applied.
    last_applied: Option<u64>,
    /// `create_protected` calls that returned a path (`w<i>-n<k>-` names).
    protected: Vec<(u64, String)>,
    protected_unknown: Vec<u64>,
    /// Lost answers the client resolved (applied, sent again).
    resolved: (u64, u64),
}

/// One worker's known-outcome writes until `stop`: versioned `set_data_idempotent` of its own
/// counter, and every third round a protected sequential create.
async fn known_writer(
    i: usize,
    client: Client,
    sh: Arc<Shared>,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> KnownLog {
    let mut rng = Rng::new(seed ^ ((i as u64 + 1) * 0x6b6e_6f77));
    let path = known_path(i);
    let mut log = KnownLog::default();
    let mut version = Some(0);
    let mut n = 0_u64;
    while !*stop.borrow() && !client.state().is_terminal() {
        n += 1;
        let v = match version {
            Some(v) => v,
            None => match client.get_data(&path).await {
                Ok((_, stat)) => stat.version,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let r = known_call(&sh, "set_data_idempotent", async {
            client.set_data_idempotent(&path, n.to_string(), v).await
        })
        .await;
        version = None;
        match r {
            Ok(stat) => {
                log.sets_applied += 1;
                log.last_applied = Some(n);
                version = Some(stat.version);
            }
            Err(Error::BadVersion) => sh.violation(format!(
                "{path}: BadVersion for the only writer (expected version {v})"
            )),
            Err(e) if outcome(&e) == Outcome::Unknown => log.sets_unknown += 1,
            Err(_) => {}
        }
        if n.is_multiple_of(3) {
            let r = known_call(&sh, "create_protected", async {
                client
                    .create_protected(
                        &format!("/chaos/prot/w{i}-n{n}-"),
                        &b"p"[..],
                        &acl::open_unsafe(),
                        CreateMode::PersistentSequential,
                    )
                    .await
            })
            .await;
            match r {
                Ok(p) => log.protected.push((n, p)),
                Err(e) if outcome(&e) == Outcome::Unknown => log.protected_unknown.push(n),
                Err(_) => {}
            }
        }
        tokio::select! {
            () = tokio::time::sleep(rng.ms(10, 60)) => {}
            () = stopped(&mut stop) => {}
        }
    }
    let w = client.counters().writes;
    log.resolved = (w.applied, w.sent_again);
    log
}

/// A known-outcome call: it may send its write more than once, each send with the call
/// deadline, so it is only held to "returns at all" (a minute).
async fn known_call<R>(
    sh: &Shared,
    what: &str,
    f: impl Future<Output = Result<R, Error>>,
) -> Result<R, Error> {
    sh.calls.fetch_add(1, Ordering::Relaxed);
    match tokio::time::timeout(Duration::from_secs(60), f).await {
        Ok(r) => r,
        Err(_) => {
            sh.violation(format!("{what} never returned"));
            Err(Error::Timeout)
        }
    }
}

/// Every known-outcome write's reported result against the servers' final state.
async fn check_known(sh: &Shared, observer: &Client, logs: &[KnownLog]) -> String {
    let mut mismatches = 0;
    for (i, log) in logs.iter().enumerate() {
        let path = known_path(i);
        let (data, stat) = observer.get_data(&path).await.unwrap();
        let version = u64::try_from(stat.version).unwrap();
        let exact = log.sets_unknown == 0;
        if version < log.sets_applied || version > log.sets_applied + log.sets_unknown {
            mismatches += 1;
            sh.violation(format!(
                "{path}: changed {version} times, {} writes reported applied, {} unknown",
                log.sets_applied, log.sets_unknown
            ));
        } else if exact
            && log.last_applied.map(|n| n.to_string().into_bytes()) != Some(data.to_vec())
            && log.sets_applied > 0
        {
            mismatches += 1;
            sh.violation(format!(
                "{path}: holds {:?}, the last write reported applied was {:?}",
                String::from_utf8_lossy(&data),
                log.last_applied
            ));
        }
    }
    let children = observer.get_children("/chaos/prot").await.unwrap();
    let mut by_write: HashMap<String, usize> = HashMap::new();
    for c in &children {
        // _c_<uuid>-w<i>-n<k>-<seq>
        let key = c
            .get(40..)
            .and_then(|rest| rest.rsplit_once('-'))
            .map_or_else(|| c.clone(), |(k, _)| k.to_owned());
        *by_write.entry(key).or_default() += 1;
    }
    for (key, n) in &by_write {
        if *n > 1 {
            mismatches += 1;
            sh.violation(format!("protected create {key} applied {n} times"));
        }
    }
    let mut acked = 0;
    let mut unknown = 0;
    for (i, log) in logs.iter().enumerate() {
        for (n, p) in &log.protected {
            acked += 1;
            let name = p.rsplit('/').next().unwrap_or_default();
            if !children.iter().any(|c| c == name) {
                mismatches += 1;
                sh.violation(format!(
                    "protected create w{i}-n{n} reported done as {p}, absent"
                ));
            }
        }
        unknown += log.protected_unknown.len();
        let mine = by_write
            .keys()
            .filter(|k| k.starts_with(&format!("w{i}-")))
            .count();
        if mine > log.protected.len() + log.protected_unknown.len() {
            mismatches += 1;
            sh.violation(format!(
                "worker {i}: {mine} protected nodes, {} reported done, {} unknown",
                log.protected.len(),
                log.protected_unknown.len()
            ));
        }
    }
    let sets: u64 = logs.iter().map(|l| l.sets_applied).sum();
    let sets_unknown: u64 = logs.iter().map(|l| l.sets_unknown).sum();
    let (applied, again) = logs
        .iter()
        .fold((0, 0), |(a, b), l| (a + l.resolved.0, b + l.resolved.1));
    format!(
        "known-outcome writes: {sets} set_data_idempotent + {acked} create_protected reported \
         done ({sets_unknown} + {unknown} ended in a timeout); lost answers resolved by the \
         servers' state: {applied} applied, {again} sent again; outcome mismatches: {mismatches}"
    )
}

#[derive(Default, Debug)]
struct LockLog {
    held: u64,
    fenced_ok: u64,
    fenced_unknown: u64,
}

/// Takes the lock, makes a fenced write, holds it a little, releases; until `stop`.
async fn lock_contender(
    j: usize,
    client: Client,
    sh: Arc<Shared>,
    holds: Arc<Mutex<[Option<watch::Receiver<Hold>>; 2]>>,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> LockLog {
    let mut rng = Rng::new(seed ^ ((j as u64 + 1) * 0x6c6f_636b));
    // In doubt well before the servers could expire the session (T/3 of silence + 1 s < T).
    let lock = zk_recipes::Mutex::new(client.clone(), "/chaos/lock")
        .in_doubt_after(Duration::from_secs(1));
    let mut log = LockLog::default();
    while !*stop.borrow() && !client.state().is_terminal() {
        let guard = match lock.try_acquire(OP).await {
            Ok(Some(g)) => g,
            Ok(None) => continue,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        holds.lock().unwrap()[j] = Some(guard.hold_stream());
        log.held += 1;
        sh.calls.fetch_add(1, Ordering::Relaxed);
        let r = guard
            .fenced(vec![Op::SetData {
                path: "/chaos/lockctr".into(),
                data: format!("{j}").into(),
                version: -1,
            }])
            .await;
        match r {
            Ok(_) => log.fenced_ok += 1,
            Err(zk_recipes::RecipeError::Client(e)) if outcome(&e) == Outcome::Unknown => {
                log.fenced_unknown += 1;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(rng.ms(20, 200)) => {}
            () = stopped(&mut stop) => {}
        }
        holds.lock().unwrap()[j] = None;
        let _ = guard.release().await;
    }
    log
}

/// Samples both contenders' holds every 2 ms: never both `Held`. Returns the samples taken.
async fn lock_monitor(
    sh: Arc<Shared>,
    holds: Arc<Mutex<[Option<watch::Receiver<Hold>>; 2]>>,
    stop: watch::Receiver<bool>,
) -> u64 {
    let mut samples = 0;
    let mut reported = false;
    while !*stop.borrow() {
        let held = holds
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .filter(|h| *h.borrow() == Hold::Held)
            .count();
        samples += 1;
        if held > 1 && !reported {
            reported = true;
            sh.violation("two holders of /chaos/lock at once".to_owned());
        } else if held <= 1 {
            reported = false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    samples
}

/// The fenced writes against the lock counter's final version.
async fn check_lock(sh: &Shared, observer: &Client, logs: &[LockLog], samples: u64) -> String {
    let (_, stat) = observer.get_data("/chaos/lockctr").await.unwrap();
    let version = u64::try_from(stat.version).unwrap();
    let ok: u64 = logs.iter().map(|l| l.fenced_ok).sum();
    let unknown: u64 = logs.iter().map(|l| l.fenced_unknown).sum();
    if version < ok || version > ok + unknown {
        sh.violation(format!(
            "/chaos/lockctr: {version} fenced writes applied, {ok} reported, {unknown} unknown"
        ));
    }
    let held: Vec<u64> = logs.iter().map(|l| l.held).collect();
    format!(
        "lock: held {held:?} times by the two contenders, {ok} fenced writes ({unknown} unknown), \
         {samples} samples of both holds, never two holders unless reported above"
    )
}
