//! The three clients under test behind one interface: this project (`zk-client`), the Rust
//! peer `zookeeper-client` 0.11 and the Java client 3.8 (through the probe).
//!
//! A subject holds one session and can run the *continuous sequential read loop* of the
//! failover benchmarks: `getData /probe`, one at a time, forever, recording when reads end.
//!
//! Definitions (same for every client): `K` = the instant just before the fault is injected;
//! `detect` = when the client noticed (its first failed read; for `zk-client`, whose reads never
//! fail on a connection loss, the engine's disconnect instant); `pause` = `K` → the end of the
//! first successful read after `detect`; `client share` = `pause − detect`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_client::{Client, SessionState, Timing};
use zk_session::AdaptiveDetector;
use zk_testkit::Ensemble;

use super::java::{JavaProbe, num};

/// Which client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// This project's `zk-client`.
    Ours,
    /// `zookeeper-client` 0.11 (Rust).
    Zkc,
    /// The official Java client 3.8.
    Java,
}

impl Who {
    /// Short key used in result files and bench names.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Ours => "zk-failover",
            Self::Zkc => "zookeeper-client",
            Self::Java => "java",
        }
    }
}

/// Failure detector of this project's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detector {
    Default,
    Adaptive,
}

/// What the read loop saw after the mark.
#[derive(Debug, Default)]
struct Rec {
    mark: Option<Instant>,
    first_fail: Option<Instant>,
    oks: Vec<Instant>,
    reads: u64,
}

/// The outcome of one fault.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// K → detect (None when the client never reported the loss).
    pub(crate) detect: Option<Duration>,
    /// K → first successful read after detect.
    pub(crate) pause: Duration,
    /// Same session, not expired.
    pub(crate) kept: bool,
    /// `zk-client` only: connection attempts and failed attempts during the fault.
    pub(crate) attempts: Option<(u64, u64)>,
    /// `zk-client` over TLS only: (full, resumed) TLS handshakes during the fault.
    pub(crate) tls: Option<(u64, u64)>,
}

enum Handle {
    Ours(Client),
    Zkc(zookeeper_client::Client),
    Java(JavaProbe),
}

/// One session of one client, with an optional read loop.
pub(crate) struct Subject {
    pub(crate) who: Who,
    handle: Handle,
    session_id: i64,
    rec: Arc<Mutex<Rec>>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Reconnect, attempt and failed-attempt counters of `zk-client` at the mark.
    reconnects_at_mark: u64,
    attempts_at_mark: (u64, u64),
    /// TLS handshake counters of `zk-client` at the mark (full, resumed).
    tls_at_mark: Option<(u64, u64)>,
    /// Rust instant of the Java probe's mark.
    java_mark: Option<Instant>,
}

/// How a session authenticates (the Java client's SASL set-up is its JVM's JAAS file, given
/// when its probe starts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code, reason = "each benchmark uses a subset")]
pub(crate) enum Auth {
    /// No SASL.
    Plain,
    /// SASL DIGEST-MD5 with this user and password.
    Digest(String, String),
    /// SASL GSSAPI with the process's Kerberos credentials, to this server principal.
    Kerberos(String),
}

/// This project's client over TLS: its configuration, and the servers to prime the TLS
/// session caches with right after connecting (empty: no priming, a failover pays a full
/// handshake).
#[derive(Clone)]
pub(crate) struct OursTls {
    pub(crate) config: zk_client::TlsConfig,
    pub(crate) prime: Vec<zk_transport::Target>,
}

/// Opens a session of `who` (Java: in the given probe process, which the subject then owns).
pub(crate) async fn connect(
    who: Who,
    connstr: &str,
    timeout: Duration,
    detector: Detector,
    java: Option<JavaProbe>,
) -> Result<Subject, String> {
    connect_with(who, connstr, timeout, detector, java, None, &Auth::Plain).await
}

/// [`connect`] with SASL (this project's client; the Java probe carries its own JAAS set-up).
pub(crate) async fn connect_auth(
    who: Who,
    connstr: &str,
    timeout: Duration,
    detector: Detector,
    java: Option<JavaProbe>,
    auth: &Auth,
) -> Result<Subject, String> {
    connect_with(who, connstr, timeout, detector, java, None, auth).await
}

/// [`connect`], over TLS for this project's client when `tls` is given (the Java probe's
/// JVM carries its own TLS flags; `zookeeper-client` is not built with TLS), and with SASL.
pub(crate) async fn connect_with(
    who: Who,
    connstr: &str,
    timeout: Duration,
    detector: Detector,
    java: Option<JavaProbe>,
    tls: Option<&OursTls>,
    auth: &Auth,
) -> Result<Subject, String> {
    let (handle, session_id) = match who {
        Who::Ours => {
            // The engine's default RNG seed is a constant, so every client would shuffle the
            // hosts identically; vary it so sessions spread as they would across processes.
            let seed = varied_seed();
            let mut b = Client::builder(connstr)
                .session_timeout(timeout)
                .configure_session(move |cfg| cfg.rng_seed = Some(seed));
            match auth {
                Auth::Plain => {}
                Auth::Digest(user, password) => b = b.sasl_digest(user, password),
                #[cfg(feature = "gssapi")]
                Auth::Kerberos(principal) => {
                    let mech = zk_client::gssapi::Gssapi::new().server_principal(principal);
                    b = b.sasl(Arc::new(mech));
                }
                #[cfg(not(feature = "gssapi"))]
                Auth::Kerberos(_) => return Err("Kerberos needs the gssapi feature".into()),
            }
            if detector == Detector::Adaptive {
                let mut t = Timing::default();
                t.adaptive = Some(AdaptiveDetector::default());
                b = b.timing(t);
            }
            let connector = tls.map(|t| zk_client::TlsConnector::new(t.config.clone()));
            if let Some(connector) = &connector {
                b = b.tls_connector(connector.clone());
            }
            let c = b.connect().await.map_err(|e| format!("connect: {e}"))?;
            if let (Some(connector), Some(t)) = (connector, tls) {
                connector.prime(&t.prime, Duration::from_secs(5)).await;
            }
            let id = c.session_id();
            (Handle::Ours(c), id)
        }
        Who::Zkc if *auth != Auth::Plain => {
            return Err("SASL with zookeeper-client is not measured".into());
        }
        Who::Zkc if tls.is_some() => {
            return Err("zookeeper-client over TLS is not built (see docs/tls.md)".into());
        }
        Who::Zkc => {
            let c = zookeeper_client::Client::connector()
                .with_session_timeout(timeout)
                .connect(connstr)
                .await
                .map_err(|e| format!("zookeeper-client connect: {e}"))?;
            let id = c.session_id().0;
            (Handle::Zkc(c), id)
        }
        Who::Java => {
            let mut p = java.ok_or("no java probe")?;
            let words = tokio::task::block_in_place(|| {
                p.cmd(&format!("connect {connstr} {}", timeout.as_millis()))
            })?;
            let id = words
                .get(1)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad connect reply {words:?}"))?;
            (Handle::Java(p), i64::from_ne_bytes(id.to_ne_bytes()))
        }
    };
    Ok(Subject {
        who,
        handle,
        session_id,
        rec: Arc::default(),
        stop: Arc::new(AtomicBool::new(false)),
        task: None,
        reconnects_at_mark: 0,
        attempts_at_mark: (0, 0),
        tls_at_mark: None,
        java_mark: None,
    })
}

/// The node whose `cons` lists the session (any client, through proxies too).
pub(crate) async fn node_of_session(ens: &Ensemble, session_id: i64) -> Option<usize> {
    for i in 0..ens.nodes().len() {
        if ens.node(i).is_live()
            && ens
                .session_connections(i, session_id)
                .await
                .is_ok_and(|n| n > 0)
        {
            return Some(i);
        }
    }
    None
}

impl Subject {
    pub(crate) fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The node the session is on.
    pub(crate) async fn node(&mut self, ens: &Ensemble) -> Option<usize> {
        if let Handle::Ours(c) = &self.handle
            && let Some(addr) = c.server()
            && let Some(i) = ens.node_for_addr(addr)
        {
            return Some(i);
        }
        if let Some(i) = node_of_session(ens, self.session_id).await {
            return Some(i);
        }
        // `cons` does not list secureClientPort connections: ask the Java client itself.
        if let Handle::Java(p) = &mut self.handle {
            let words = tokio::task::block_in_place(|| p.cmd("server")).ok()?;
            let addr = words.get(1)?.parse().ok()?;
            return ens.node_for_addr(addr);
        }
        None
    }

    /// Starts the continuous sequential read loop.
    pub(crate) fn start_loop(&mut self) -> Result<(), String> {
        let rec = Arc::clone(&self.rec);
        let stop = Arc::clone(&self.stop);
        match &mut self.handle {
            Handle::Ours(c) => {
                let c = c.clone();
                self.task = Some(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let ok = c.get_data("/probe").await.is_ok();
                        record(&rec, ok);
                        if !ok {
                            if c.state().is_terminal() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }));
            }
            Handle::Zkc(c) => {
                let c = c.clone();
                self.task = Some(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let ok = c.get_data("/probe").await.is_ok();
                        record(&rec, ok);
                        if !ok {
                            // A failed read returns at once while disconnected: retry without
                            // burning a core (the Java probe's loop blocks in the client instead).
                            tokio::task::yield_now().await;
                        }
                    }
                }));
            }
            Handle::Java(p) => {
                tokio::task::block_in_place(|| p.cmd("loop-start"))?;
            }
        }
        Ok(())
    }

    /// Resets the recorder; returns the mark instant. Call just before the fault.
    pub(crate) fn mark(&mut self) -> Result<Instant, String> {
        if let Handle::Ours(c) = &self.handle {
            let cs = c.counters().session;
            self.reconnects_at_mark = cs.reconnects;
            self.attempts_at_mark = (cs.attempts, cs.failed_attempts);
            self.tls_at_mark = c.tls().map(|t| {
                let st = t.stats();
                (st.full_handshakes, st.resumed_handshakes)
            });
        }
        if let Handle::Java(p) = &mut self.handle {
            let m = p.mark()?;
            self.java_mark = Some(m);
            return Ok(m);
        }
        let now = Instant::now();
        let mut g = self.rec.lock().unwrap();
        *g = Rec {
            mark: Some(now),
            ..Rec::default()
        };
        Ok(now)
    }

    /// The outcome so far relative to `k`, if the client has resumed reading.
    pub(crate) fn outcome(&mut self, k: Instant) -> Result<Option<Outcome>, String> {
        match &mut self.handle {
            Handle::Ours(c) => {
                let counters = c.counters().session;
                if counters.reconnects <= self.reconnects_at_mark {
                    return Ok(None);
                }
                let change = c.state_stream().borrow().clone();
                let detect_at = counters.last_pause.map(|p| change.at.checked_sub(p));
                let detect_at = detect_at.flatten().unwrap_or(k);
                let g = self.rec.lock().unwrap();
                let Some(ok) = g.oks.iter().find(|t| **t >= detect_at) else {
                    return Ok(None);
                };
                let state = c.state();
                if std::env::var_os("ZK_BENCH_VERBOSE").is_some() {
                    eprintln!(
                        "    zk-failover: disconnected→session back {:.2} ms, →read answered {:.2} ms, attempts {}",
                        counters
                            .last_pause
                            .map_or(f64::NAN, |p| p.as_secs_f64() * 1e3),
                        ok.saturating_duration_since(change.at).as_secs_f64() * 1e3,
                        counters.attempts - self.attempts_at_mark.0,
                    );
                }
                Ok(Some(Outcome {
                    detect: Some(detect_at.saturating_duration_since(k)),
                    pause: ok.saturating_duration_since(k),
                    kept: c.session_id() == self.session_id && !state.is_terminal(),
                    attempts: Some((
                        counters.attempts - self.attempts_at_mark.0,
                        counters.failed_attempts - self.attempts_at_mark.1,
                    )),
                    tls: c.tls().zip(self.tls_at_mark).map(|(t, (full, resumed))| {
                        let st = t.stats();
                        (st.full_handshakes - full, st.resumed_handshakes - resumed)
                    }),
                }))
            }
            Handle::Zkc(c) => {
                let g = self.rec.lock().unwrap();
                let from = g.first_fail.unwrap_or(k);
                let Some(ok) = g.oks.iter().find(|t| **t >= from) else {
                    return Ok(None);
                };
                // Without a failed read, only a read after a reconnect proves anything.
                if g.first_fail.is_none() {
                    return Ok(None);
                }
                let state = c.state();
                Ok(Some(Outcome {
                    detect: g.first_fail.map(|f| f.saturating_duration_since(k)),
                    pause: ok.saturating_duration_since(k),
                    kept: c.session_id().0 == self.session_id
                        && !matches!(
                            state,
                            zookeeper_client::SessionState::Expired
                                | zookeeper_client::SessionState::Closed
                                | zookeeper_client::SessionState::AuthFailed
                        ),
                    attempts: None,
                    tls: None,
                }))
            }
            Handle::Java(p) => {
                let w = tokio::task::block_in_place(|| p.cmd("result"))?;
                let (fail, ok_after) = (num(&w, 1)?, num(&w, 2)?);
                if fail < 0 || ok_after < 0 {
                    return Ok(None);
                }
                let m = self.java_mark.unwrap_or(k);
                // Probe times are relative to its mark; shift them to K.
                let shift = |ns: i64| {
                    let at = m + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
                    at.saturating_duration_since(k)
                };
                let sid = w
                    .get(4)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map(|v| i64::from_ne_bytes(v.to_ne_bytes()));
                let state = w.get(5).cloned().unwrap_or_default();
                Ok(Some(Outcome {
                    detect: Some(shift(fail)),
                    pause: shift(ok_after),
                    kept: sid == Some(self.session_id) && state == "CONNECTED",
                    attempts: None,
                    tls: None,
                }))
            }
        }
    }

    /// Since the mark: the longest time without a successful read (the client's pause
    /// through whatever happened; `None` if it is still not reading after `lost_after`), and
    /// whether the session is the same and alive.
    pub(crate) fn since_mark(
        &mut self,
        lost_after: Duration,
    ) -> Result<(Option<Duration>, bool), String> {
        match &mut self.handle {
            Handle::Ours(_) | Handle::Zkc(_) => {
                let g = self.rec.lock().unwrap();
                let now = Instant::now();
                let mut prev = g.mark.unwrap_or(now);
                let mut gap = Duration::ZERO;
                for ok in &g.oks {
                    gap = gap.max(ok.saturating_duration_since(prev));
                    prev = *ok;
                }
                let stalled = now.saturating_duration_since(prev);
                let pause = (stalled < lost_after).then_some(gap);
                drop(g);
                let kept = self.alive()
                    && match &self.handle {
                        Handle::Ours(c) => c.session_id() == self.session_id,
                        Handle::Zkc(c) => c.session_id().0 == self.session_id,
                        Handle::Java(_) => false,
                    };
                Ok((pause, kept))
            }
            Handle::Java(p) => {
                let w = tokio::task::block_in_place(|| p.cmd("result"))?;
                let (fail, ok_after, first_ok) = (num(&w, 1)?, num(&w, 2)?, num(&w, 3)?);
                let ns = |v: i64| Duration::from_nanos(u64::try_from(v).unwrap_or(0));
                let pause = if fail < 0 {
                    (first_ok >= 0).then_some(Duration::ZERO)
                } else if ok_after >= 0 {
                    Some(ns(ok_after).saturating_sub(ns(fail)))
                } else {
                    None
                };
                let sid = w
                    .get(4)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map(|v| i64::from_ne_bytes(v.to_ne_bytes()));
                let state = w.get(5).cloned().unwrap_or_default();
                Ok((pause, sid == Some(self.session_id) && state == "CONNECTED"))
            }
        }
    }

    /// Polls [`Subject::outcome`] until it is known or `limit` passes.
    pub(crate) async fn wait_outcome(
        &mut self,
        k: Instant,
        limit: Duration,
    ) -> Result<Option<Outcome>, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(o) = self.outcome(k)? {
                return Ok(Some(o));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let step = if self.who == Who::Java { 20 } else { 5 };
            tokio::time::sleep(Duration::from_millis(step)).await;
        }
    }

    /// Whether the session is alive (not expired/closed).
    pub(crate) fn alive(&self) -> bool {
        match &self.handle {
            Handle::Ours(c) => !c.state().is_terminal(),
            Handle::Zkc(c) => !matches!(
                c.state(),
                zookeeper_client::SessionState::Expired | zookeeper_client::SessionState::Closed
            ),
            Handle::Java(_) => true,
        }
    }

    /// Stops the loop and closes the session; returns the Java probe for reuse.
    pub(crate) async fn close(mut self) -> Option<JavaProbe> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        match self.handle {
            Handle::Ours(c) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
                None
            }
            Handle::Zkc(c) => {
                drop(c);
                None
            }
            Handle::Java(mut p) => {
                let ok =
                    tokio::task::block_in_place(|| p.cmd("loop-stop").and_then(|_| p.cmd("close")));
                ok.ok().map(|_| p)
            }
        }
    }
}

fn record(rec: &Mutex<Rec>, ok: bool) {
    let t = Instant::now();
    let mut g = rec.lock().unwrap();
    g.reads += 1;
    let Some(m) = g.mark else { return };
    if t <= m {
        return;
    }
    if ok {
        if g.oks.len() < 1_000_000 {
            g.oks.push(t);
        }
    } else if g.first_fail.is_none() {
        g.first_fail = Some(t);
    }
}

/// State of `zk-client`, re-exported for the benches.
pub(crate) fn ours_state(c: &Client) -> SessionState {
    c.state()
}

/// A seed that differs per call (std's randomly keyed hasher plus a counter and the clock).
pub(crate) fn varied_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
