//! What a fleet of separate client processes failing over together does to a real 3-node
//! ZooKeeper 3.8 ensemble (`zk-testkit`, tick 200 ms, T = 6 s) when its leader is killed.
//!
//! P member processes (this executable re-executed with `ZK_FLEET_MEMBER=zk-failover` or
//! `zookeeper-client`, or one JVM each running `benches/java/ZkProbe.java`'s fleet mode), each
//! with one session reading `/probe` every 100 ms and printing one line per event with a
//! CLOCK_MONOTONIC timestamp (`d` = a read failed or the client reported a disconnection, `u` =
//! the first successful read after a `d`, `x` = the session expired or changed). Once all of
//! them are reading, `kill -9` of the leader (every follower then drops all its clients and the
//! survivors elect). Per trial:
//!
//! - *election*: kill → the first survivor that answers `srvr` as leader or follower (polled
//!   every 20 ms; the same kill with no clients is the baseline, in the same run);
//! - *back* per process: kill → its first successful read after its last failure; p50, p90 and
//!   the last over the fleet (not back within 15 s = counted as not back);
//! - *connections per process*: the kernel's `Tcp: PassiveOpens` delta over the window (kill →
//!   every member back), minus the election poller's own connections and the quorum's own
//!   (the baseline trials' median of the same quantity), divided by P; listen-queue drops =
//!   `TcpExt: ListenOverflows` / `ListenDrops` deltas;
//! - CPU over the window of the two surviving JVMs and of the whole fleet (`/proc/<pid>/stat`);
//! - sessions lost (a member whose session expired or changed).
//!
//! Clients rotate within each trial (baseline, zk-failover, zookeeper-client, Java, then the
//! next trial starts one further along). A criterion-compatible command line like the other
//! targets: `--bench` measures (P = 100 and 200, 3 trials each, Java at P ≤ 100 only), `--test`
//! or no `--bench` is the smoke run `cargo test --all-targets` does (P = 10 of zk-failover plus
//! one baseline, one trial, asserting only that every member came back with its session).
//!
//! ```text
//! cargo bench -p zk-bench --bench fleet                          # measurement (~10 minutes on 2 cores)
//! cargo bench -p zk-bench --bench fleet -- --test                # smoke (~30 s)
//! ZK_FLEET_P=1000 cargo bench -p zk-bench --bench fleet -- baseline zk-failover zookeeper-client
//! ZK_FLEET_P=20 ZK_BENCH_SAMPLES=1 ZK_BENCH_VERBOSE=1 cargo bench -p zk-bench --bench fleet
//! cargo bench -p zk-bench --bench fleet -- --report-only         # re-render the report from fleet.tsv
//! ```
//!
//! Environment: `ZK_FLEET_P` (comma-separated fleet sizes), `ZK_FLEET_JAVA_MAX` (largest P the
//! Java client runs at, default 100: a JVM per member), `ZK_BENCH_SAMPLES` (trials),
//! `ZK_BENCH_DOCS=1` (write the fleet section of `docs/benchmarks.md` and `docs/fleet.svg`),
//! `ZK_BENCH_VERBOSE=1` (progress on stderr). Raw samples: `target/bench-results/fleet.tsv`
//! (smoke runs: `fleet-smoke.tsv`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark code")]

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::clients::Who;
use support::harness::{Args, Mode, Results};
use support::sys::{self, TcpCounters};
use support::{java, report};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use zk_client::{Client, CreateMode, acl};
use zk_testkit::Ensemble;

/// Selects the member mode (value: a client key) in a re-executed child.
const MEMBER_ENV: &str = "ZK_FLEET_MEMBER";
/// The connection string a member connects to.
const CONNECT_ENV: &str = "ZK_FLEET_CONNECT";
const T6: Duration = Duration::from_secs(6);
const PATH: &str = "/probe";
const READ_PERIOD: Duration = Duration::from_millis(100);
/// After this long a member that is not back is counted as not back.
const BACK_LIMIT: Duration = Duration::from_secs(15);
/// The election poller's period.
const POLL: Duration = Duration::from_millis(20);
/// Members started (and awaited) at a time, so the start itself is no storm.
const RUST_BATCH: usize = 25;
const JAVA_BATCH: usize = 10;
/// Flags of the member JVMs: small heaps, one GC thread, C1 only, class-data sharing.
const JAVA_FLAGS: &[&str] = &[
    "-Xmx32m",
    "-Xss256k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
];

/// CLOCK_MONOTONIC in nanoseconds: the clock shared by every process of the machine (Java's
/// `System.nanoTime()` reads it on Linux; `std::time::Instant` does too but hides its value).
#[allow(
    unsafe_code,
    reason = "clock_gettime is the only way to read CLOCK_MONOTONIC's value"
)]
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// The CLOCK_MONOTONIC value of a past `Instant`.
fn mono_at(at: Instant) -> u64 {
    mono_ns().saturating_sub(u64::try_from(at.elapsed().as_nanos()).unwrap_or(0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ns_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Progress lines on stderr with `ZK_BENCH_VERBOSE=1`.
fn step(what: &str) {
    if std::env::var_os("ZK_BENCH_VERBOSE").is_some() {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let t0 = START.get_or_init(Instant::now);
        eprintln!("[{:8.3}] {what}", t0.elapsed().as_secs_f64());
    }
}

/// What runs in a trial: no clients at all, or a fleet of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    Fleet(Who),
    /// This project's fleet, measured at its second leader kill: every process has learned
    /// how long elections take from the first (long-lived processes in production have).
    Learned,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Fleet(w) => w.key(),
            Self::Learned => "zk-failover-learned",
        }
    }
}

fn main() {
    if let Ok(kind) = std::env::var(MEMBER_ENV) {
        std::process::exit(member::run(&kind));
    }
    if std::env::args().any(|a| a == "--report-only") {
        report::render_fleet();
        return;
    }
    let args = Args::parse();
    if args.mode == Mode::List {
        for p in sizes(&args) {
            for k in ["baseline", "zk-failover", "zookeeper-client", "java"] {
                println!("fleet/p{p}/{k}: benchmark");
            }
        }
        return;
    }
    support::harness::run_to_completion("fleet", run(args));
}

/// Fleet sizes: `ZK_FLEET_P`, else 100 and 200 (smoke: 10).
fn sizes(args: &Args) -> Vec<usize> {
    if let Ok(v) = std::env::var("ZK_FLEET_P") {
        let p: Vec<usize> = v
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .filter(|p| *p > 0)
            .collect();
        if !p.is_empty() {
            return p;
        }
    }
    if args.mode == Mode::Bench {
        vec![100, 200]
    } else {
        vec![10]
    }
}

fn java_max() -> usize {
    std::env::var("ZK_FLEET_JAVA_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

struct Ctx {
    args: Args,
    ens: Ensemble,
    results: Results,
    failures: Vec<String>,
}

async fn run(args: Args) -> Vec<String> {
    let bench = args.mode == Mode::Bench;
    // The failover benchmark's ensemble, without the fault proxies (clients connect directly).
    let ens = match support::ensemble::builder().start().await {
        Ok(e) => e,
        Err(e) => return vec![format!("start the 3-node ensemble: {e}")],
    };
    let mut ctx = Ctx {
        args,
        ens,
        results: Results::default(),
        failures: Vec::new(),
    };
    if let Err(e) = create_probe(&ctx.ens).await {
        ctx.failures.push(e);
        return ctx.failures;
    }
    for i in 0..ctx.ens.nodes().len() {
        step(&format!("warming node {i}"));
        if let Err(e) = support::ensemble::warm(&ctx.ens, i, bench).await {
            ctx.failures.push(format!("warm-up of node {i}: {e}"));
        }
    }
    let java_cp = if bench {
        match java::prepare() {
            Ok(cp) => Some(cp),
            Err(e) => {
                println!("fleet: Java client skipped: {e}");
                None
            }
        }
    } else {
        None
    };
    let load = sys::load1;
    ctx.results.add("machine", "-", "load_start", vec![load()]);
    let trials = ctx.args.samples(3);
    for p in sizes(&ctx.args) {
        let group = format!("p{p}");
        let mut kinds = vec![Kind::Baseline, Kind::Fleet(Who::Ours)];
        if bench {
            kinds.push(Kind::Learned);
            kinds.push(Kind::Fleet(Who::Zkc));
            if java_cp.is_some() && p <= java_max() {
                kinds.push(Kind::Fleet(Who::Java));
            } else if java_cp.is_some() {
                println!(
                    "fleet/{group}/java: skipped (one JVM per member; Java runs at P <= {}, ZK_FLEET_JAVA_MAX)",
                    java_max()
                );
            }
        }
        kinds.retain(|k| ctx.args.selected(&format!("fleet/{group}/{}", k.key())));
        let mut pool = None;
        if kinds.contains(&Kind::Fleet(Who::Java))
            && let Some(cp) = &java_cp
        {
            step(&format!("starting {p} member JVMs"));
            let t0 = Instant::now();
            match JavaPool::start(cp, p).await {
                Ok(jp) => {
                    println!(
                        "fleet/{group}/java: {p} member JVMs ({}) started in {:.1} s",
                        JAVA_FLAGS.join(" "),
                        t0.elapsed().as_secs_f64()
                    );
                    pool = Some(jp);
                }
                Err(e) => {
                    println!("fleet/{group}/java: FAILED to start the JVMs: {e}");
                    ctx.results.add(&group, "java", "errors", vec![1.0]);
                    kinds.retain(|k| *k != Kind::Fleet(Who::Java));
                }
            }
        }
        for t in 0..trials {
            // Rotate the order from trial to trial (load drifts on a shared machine).
            let n = kinds.len();
            for j in 0..n {
                let kind = kinds[(t + j) % n];
                one(&mut ctx, kind, p, pool.as_mut()).await;
            }
        }
        if let Some(jp) = pool.take() {
            jp.stop().await;
        }
    }
    ctx.results.add("machine", "-", "load_end", vec![load()]);
    let name = if bench { "fleet" } else { "fleet-smoke" };
    if !ctx.args.filters.is_empty() || std::env::var_os("ZK_FLEET_P").is_some() {
        let fresh = std::mem::take(&mut ctx.results);
        ctx.results = Results::read(name).merged_with(fresh);
    }
    match ctx.results.write(name) {
        Ok(p) => println!("fleet: results in {}", p.display()),
        Err(e) => eprintln!("fleet: cannot write results: {e}"),
    }
    if bench && std::env::var_os("ZK_BENCH_DOCS").is_some() {
        report::render_fleet();
    }
    ctx.failures
}

async fn create_probe(ens: &Ensemble) -> Result<(), String> {
    let setup = Client::builder(&ens.direct_connect_string())
        .session_timeout(T6)
        .connect()
        .await
        .map_err(|e| format!("set-up client: {e}"))?;
    let r = setup
        .create(PATH, "probe", &acl::open_unsafe(), CreateMode::Persistent)
        .await;
    setup.close().await;
    match r {
        Ok(_) | Err(zk_client::Error::NodeExists) => Ok(()),
        Err(e) => Err(format!("create {PATH}: {e}")),
    }
}

/// One trial of one kind, then the heal; results and failures go into `ctx`.
async fn one(ctx: &mut Ctx, kind: Kind, p: usize, pool: Option<&mut JavaPool>) {
    let group = format!("p{p}");
    let id = format!("fleet/{group}/{}", kind.key());
    let smoke = ctx.args.mode != Mode::Bench;
    match trial(ctx, kind, p, pool).await {
        Ok(o) => {
            o.print(&id);
            o.record(&mut ctx.results, &group, kind.key());
            if o.election.is_none() {
                ctx.failures
                    .push(format!("{id}: no survivor served within 20 s"));
            }
            if kind != Kind::Baseline
                && (smoke || matches!(kind, Kind::Fleet(Who::Ours) | Kind::Learned))
            {
                if o.not_back > 0 {
                    ctx.failures.push(format!(
                        "{id}: {} of {} members not back within {BACK_LIMIT:?}",
                        o.not_back, o.members
                    ));
                }
                if o.lost > 0 {
                    ctx.failures.push(format!("{id}: {} sessions lost", o.lost));
                }
            }
        }
        Err(e) => {
            println!("{id}: FAILED: {e}");
            ctx.results.add(&group, kind.key(), "errors", vec![1.0]);
            if smoke || kind != Kind::Fleet(Who::Java) {
                ctx.failures.push(format!("{id}: {e}"));
            }
        }
    }
    step("healing");
    if let Err(e) = support::ensemble::heal(&ctx.ens, !smoke).await {
        ctx.failures.push(format!("{id}: heal: {e}"));
    }
    step("healed");
}

/// Whether every member has read successfully after its last failure since `k`.
fn all_back(members: &[Member], k: u64) -> bool {
    members.iter().all(|m| m.log().back(k).is_some())
}

/// One trial's measurements.
#[derive(Debug, Default)]
struct Outcome {
    members: usize,
    election: Option<Duration>,
    window: Duration,
    /// Kill → back, per member that came back.
    back: Vec<f64>,
    not_back: usize,
    lost: usize,
    tcp: TcpCounters,
    poller_conns: u64,
    survivors_cpu: Duration,
    fleet_cpu: Duration,
    /// zk-failover only: connection attempts its engines counted, summed over the fleet.
    client_attempts: Option<u64>,
}

impl Outcome {
    fn print(&self, id: &str) {
        let s = support::harness::sorted(&self.back);
        let q = |f: f64| {
            if s.is_empty() {
                f64::NAN
            } else {
                s[((s.len() - 1) as f64 * f).round() as usize]
            }
        };
        let attempts = self
            .client_attempts
            .map_or(String::new(), |a| format!(", engine attempts {a}"));
        let fleet = if self.members == 0 {
            String::new()
        } else {
            format!(
                ", back p50 {:.0} p90 {:.0} last {:.0} ms, not back {}, lost {}",
                q(0.5),
                q(0.9),
                q(1.0),
                self.not_back,
                self.lost
            )
        };
        println!(
            "{id}: P={} election {} ms{fleet}, window {:.0} ms, PassiveOpens {} (poller {}), \
             ActiveOpens {}, AttemptFails {}, ListenOverflows {} ListenDrops {}, survivors CPU \
             {:.0} ms, fleet CPU {:.0} ms{attempts}",
            self.members,
            self.election
                .map_or("-".into(), |e| format!("{:.0}", ms(e))),
            ms(self.window),
            self.tcp.passive_opens,
            self.poller_conns,
            self.tcp.active_opens,
            self.tcp.attempt_fails,
            self.tcp.listen_overflows,
            self.tcp.listen_drops,
            ms(self.survivors_cpu),
            ms(self.fleet_cpu),
        );
    }

    fn record(&self, r: &mut Results, group: &str, key: &str) {
        let f = |v: u64| vec![v as f64];
        if let Some(e) = self.election {
            r.add(group, key, "election_ms", vec![ms(e)]);
        }
        r.add(group, key, "window_ms", vec![ms(self.window)]);
        r.add(group, key, "passive_opens", f(self.tcp.passive_opens));
        r.add(group, key, "poller_conns", f(self.poller_conns));
        r.add(group, key, "active_opens", f(self.tcp.active_opens));
        r.add(group, key, "attempt_fails", f(self.tcp.attempt_fails));
        r.add(group, key, "listen_overflows", f(self.tcp.listen_overflows));
        r.add(group, key, "listen_drops", f(self.tcp.listen_drops));
        r.add(group, key, "survivors_cpu_ms", vec![ms(self.survivors_cpu)]);
        if key == "baseline" {
            return;
        }
        let s = support::harness::sorted(&self.back);
        let q = |f: f64| s[((s.len() - 1) as f64 * f).round() as usize];
        r.add(group, key, "members", vec![self.members as f64]);
        if self.not_back > 0 || s.is_empty() {
            // Not everyone came back: the last one is "beyond the limit".
            r.add(group, key, "last_back_ms", vec![ms(BACK_LIMIT)]);
        } else {
            r.add(group, key, "last_back_ms", vec![q(1.0)]);
            if let Some(e) = self.election {
                r.add(
                    group,
                    key,
                    "last_back_minus_election_ms",
                    vec![q(1.0) - ms(e)],
                );
            }
        }
        if !s.is_empty() {
            r.add(group, key, "p50_back_ms", vec![q(0.5)]);
            r.add(group, key, "p90_back_ms", vec![q(0.9)]);
        }
        r.add(group, key, "not_back", vec![self.not_back as f64]);
        r.add(group, key, "lost", vec![self.lost as f64]);
        r.add(group, key, "fleet_cpu_ms", vec![ms(self.fleet_cpu)]);
        if let Some(a) = self.client_attempts {
            r.add(
                group,
                key,
                "engine_attempts_per_process",
                vec![a as f64 / self.members.max(1) as f64],
            );
        }
    }
}

/// Events of one member, as its reader task saw them.
#[derive(Debug, Default, Clone)]
struct Log {
    ready: bool,
    pong: bool,
    downs: Vec<u64>,
    ups: Vec<u64>,
    lost: Option<u64>,
    /// The `end …` (Rust) or `stopped …` (Java) line.
    end: Option<String>,
    err: Option<String>,
    exited: bool,
}

impl Log {
    /// Kill → first successful read after the last failure (ns), if back.
    fn back(&self, k: u64) -> Option<u64> {
        let last_down = self.downs.iter().copied().filter(|d| *d >= k).max()?;
        self.ups
            .iter()
            .copied()
            .filter(|u| *u > last_down)
            .min()
            .map(|u| u - k)
    }
}

/// A member process (Rust child or JVM) and its event log.
struct Member {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    log: Arc<Mutex<Log>>,
}

impl Member {
    fn spawn(mut cmd: Command) -> Result<Self, String> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("spawn a member: {e}"))?;
        let pid = child.id().ok_or("member without pid")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("member without stdout")?;
        let log = Arc::new(Mutex::new(Log::default()));
        let l = Arc::clone(&log);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut w = line.split_whitespace();
                let word = w.next().unwrap_or_default();
                let ns = w.next().and_then(|v| v.parse::<u64>().ok());
                let mut g = l.lock().unwrap();
                match (word, ns) {
                    ("ready", _) => g.ready = true,
                    ("pong", _) => g.pong = true,
                    ("d", Some(t)) => g.downs.push(t),
                    ("u", Some(t)) => g.ups.push(t),
                    ("x", Some(t)) => {
                        g.lost.get_or_insert(t);
                    }
                    ("end" | "stopped", _) => g.end = Some(line.clone()),
                    ("err", _) => g.err = Some(line.clone()),
                    _ => {}
                }
            }
            l.lock().unwrap().exited = true;
        });
        Ok(Self {
            child,
            pid,
            stdin,
            log,
        })
    }

    async fn send(&mut self, line: &str) -> Result<(), String> {
        let s = self.stdin.as_mut().ok_or("member stdin closed")?;
        s.write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("member stdin: {e}"))?;
        s.flush().await.map_err(|e| format!("member stdin: {e}"))
    }

    fn log(&self) -> Log {
        self.log.lock().unwrap().clone()
    }
}

/// Waits until `done` holds for every member's log (an `err` line or an exit fails).
async fn wait_all(
    members: &[Member],
    limit: Duration,
    what: &str,
    done: impl Fn(&Log) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let mut missing = 0;
        for m in members {
            let g = m.log.lock().unwrap();
            if done(&g) {
                continue;
            }
            if let Some(e) = &g.err {
                return Err(format!("member {}: {e}", m.pid));
            }
            if g.exited {
                return Err(format!("member {} exited before {what}", m.pid));
            }
            missing += 1;
        }
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{missing} members not {what} within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Long-lived member JVMs, one session each per trial (`fleet` / `fleet-stop`): starting a JVM
/// per member per trial would cost more CPU than the trial measures.
struct JavaPool {
    members: Vec<Member>,
}

impl JavaPool {
    async fn start(cp: &str, n: usize) -> Result<Self, String> {
        let mut members = Vec::with_capacity(n);
        while members.len() < n {
            let from = members.len();
            for _ in 0..JAVA_BATCH.min(n - from) {
                let mut cmd = Command::new("java");
                cmd.args(JAVA_FLAGS).arg("-cp").arg(cp).arg("ZkProbe");
                let mut m = Member::spawn(cmd)?;
                m.send("ping").await?;
                members.push(m);
            }
            wait_all(&members[from..], Duration::from_secs(120), "started", |l| {
                l.pong
            })
            .await?;
        }
        Ok(Self { members })
    }

    async fn stop(mut self) {
        for m in &mut self.members {
            let _ = m.send("quit").await;
            m.stdin = None;
        }
        reap(&mut self.members).await;
    }
}

/// Waits up to 10 s for the members to exit, then kills the rest (by pid, through their
/// `Child`) and reaps them.
async fn reap(members: &mut [Member]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for m in members.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, m.child.wait()).await.is_err() {
            let _ = m.child.start_kill();
            let _ = m.child.wait().await;
        }
    }
}

/// Starts the fleet of `who` (Rust: P fresh processes; Java: a new session in each pooled JVM),
/// in batches, each awaited until reading.
async fn start_fleet(
    who: Who,
    p: usize,
    connstr: &str,
    pool: Option<&mut JavaPool>,
) -> Result<Vec<Member>, String> {
    let mut members: Vec<Member> = Vec::with_capacity(p);
    if who == Who::Java {
        let pool = pool.ok_or("no Java pool")?;
        let mut from = 0;
        while from < pool.members.len() {
            let to = (from + JAVA_BATCH).min(pool.members.len());
            for m in &mut pool.members[from..to] {
                *m.log.lock().unwrap() = Log::default();
                m.send(&format!("fleet {connstr} {}", T6.as_millis()))
                    .await?;
            }
            wait_all(
                &pool.members[from..to],
                Duration::from_secs(60),
                "ready",
                |l| l.ready,
            )
            .await?;
            from = to;
        }
        // Moved out for the trial; handed back by `finish_fleet`.
        members = std::mem::take(&mut pool.members);
        return Ok(members);
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    while members.len() < p {
        let from = members.len();
        for _ in 0..RUST_BATCH.min(p - from) {
            let mut cmd = Command::new(&exe);
            cmd.env(MEMBER_ENV, who.key())
                .env(CONNECT_ENV, connstr)
                .env_remove("ZK_BENCH_LOG");
            members.push(Member::spawn(cmd)?);
        }
        wait_all(&members[from..], Duration::from_secs(60), "ready", |l| {
            l.ready
        })
        .await?;
    }
    Ok(members)
}

/// Ends the trial's sessions: Rust members get their stdin closed (they print `end …`, close
/// the session and exit); Java members are told `fleet-stop` and go back to the pool.
async fn finish_fleet(who: Who, mut members: Vec<Member>, pool: Option<&mut JavaPool>) {
    if who == Who::Java {
        for m in &mut members {
            let _ = m.send("fleet-stop").await;
        }
        let _ = wait_all(&members, Duration::from_secs(30), "stopped", |l| {
            l.end.is_some()
        })
        .await;
        if let Some(pool) = pool {
            pool.members = members;
        }
        return;
    }
    for m in &mut members {
        m.stdin = None;
    }
    reap(&mut members).await;
}

/// One `srvr` exchange; counts the connection once TCP connected.
async fn srvr(addr: SocketAddr, conns: &AtomicU64) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    conns.fetch_add(1, Ordering::Relaxed);
    s.write_all(b"srvr").await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    (&mut s)
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The epoch (upper 32 bits of the `Zxid:`) and the `Mode:` of a `srvr` answer.
fn parse_srvr(s: &str) -> (Option<u64>, Option<&str>) {
    let field = |name: &str| s.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let epoch = field("Zxid:")
        .and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
        .map(|z| z >> 32);
    (epoch, field("Mode:"))
}

/// Polls the survivors every 20 ms until one answers `srvr` as leader or follower of the new
/// epoch (an epoch above `epoch0`, or after the poller saw it not serving: right after the kill
/// a follower still says `follower` for a few ms until it notices the leader is gone); returns
/// that instant (CLOCK_MONOTONIC ns), or None after 20 s.
async fn poll_election(
    addrs: Vec<SocketAddr>,
    epoch0: Option<u64>,
    conns: Arc<AtomicU64>,
) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen_down = vec![false; addrs.len()];
    while Instant::now() < deadline {
        let round = Instant::now();
        for (i, a) in addrs.iter().enumerate() {
            let answer = tokio::time::timeout(Duration::from_millis(500), srvr(*a, &conns)).await;
            let Ok(Ok(s)) = answer else {
                seen_down[i] = true;
                continue;
            };
            let (epoch, mode) = parse_srvr(&s);
            if !matches!(mode, Some("leader" | "follower")) {
                seen_down[i] = true;
                continue;
            }
            let new_epoch = matches!((epoch, epoch0), (Some(e), Some(e0)) if e > e0);
            if seen_down[i] || new_epoch {
                return Some(mono_ns());
            }
        }
        tokio::time::sleep(POLL.saturating_sub(round.elapsed())).await;
    }
    None
}

/// utime+stime (`/proc/<pid>/stat`, 10 ms ticks) of each process.
fn cpu_of(pids: &[u32]) -> Vec<Duration> {
    pids.iter().map(|p| sys::process_cpu(Some(*p))).collect()
}

/// Run time of each process's threads (`/proc/<pid>/task/*/schedstat`, ns): a fleet member
/// uses a few ms in a window, below the 10 ms ticks of `/proc/<pid>/stat`.
fn threads_cpu_of(pids: &[u32]) -> Vec<Duration> {
    pids.iter()
        .map(|p| sys::threads_cpu(Some(*p), ""))
        .collect()
}

fn cpu_delta(before: &[Duration], after: &[Duration]) -> Duration {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.saturating_sub(*b))
        .sum()
}

async fn trial(
    ctx: &mut Ctx,
    kind: Kind,
    p: usize,
    mut pool: Option<&mut JavaPool>,
) -> Result<Outcome, String> {
    let connstr = ctx.ens.direct_connect_string();
    let who = match kind {
        Kind::Baseline => None,
        Kind::Fleet(w) => Some(w),
        Kind::Learned => Some(Who::Ours),
    };
    let members = match who {
        Some(w) => {
            step(&format!("starting {p} members of {}", w.key()));
            match start_fleet(w, p, &connstr, pool.as_deref_mut()).await {
                Ok(m) => m,
                Err(e) => return Err(format!("start: {e}")),
            }
        }
        None => Vec::new(),
    };
    if kind == Kind::Learned {
        step("a first leader kill for the fleet to learn from (not measured)");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let leader = ctx
            .ens
            .wait_for_leader(Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let k = mono_ns();
        let node = ctx.ens.node(leader);
        tokio::task::block_in_place(|| node.kill()).map_err(|e| e.to_string())?;
        let limit = k + u64::try_from(BACK_LIMIT.as_nanos()).unwrap_or(u64::MAX);
        while mono_ns() < limit && !all_back(&members, k) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        support::ensemble::heal(&ctx.ens, ctx.args.mode == Mode::Bench).await?;
        step("healed; the fleet settles before the measured kill");
    }
    let leader = ctx
        .ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let survivors: Vec<usize> = (0..ctx.ens.nodes().len())
        .filter(|i| *i != leader)
        .collect();
    let survivor_addrs: Vec<SocketAddr> = survivors
        .iter()
        .map(|i| ctx.ens.node(*i).client_addr())
        .collect();
    let survivor_pids: Vec<u32> = survivors
        .iter()
        .filter_map(|i| ctx.ens.node(*i).pid())
        .collect();
    step("fleet reading; settling 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The epoch before the kill (outside the window).
    let epoch0 = match ctx.ens.four_letter(leader, "srvr").await {
        Ok(s) => parse_srvr(&s).0,
        Err(_) => None,
    };
    let fleet_pids: Vec<u32> = members.iter().map(|m| m.pid).collect();
    let (fleet0, surv0) = (threads_cpu_of(&fleet_pids), cpu_of(&survivor_pids));
    let tcp0 = TcpCounters::read();
    let k = mono_ns();
    let node = ctx.ens.node(leader);
    // `kill` reaps the JVM (blocking ~20 ms): off the runtime's workers.
    let killed = tokio::task::block_in_place(|| node.kill()).map_err(|e| e.to_string());
    step(&format!("killed the leader (node {leader})"));
    let conns = Arc::new(AtomicU64::new(0));
    let mut poller = Some(tokio::spawn(poll_election(
        survivor_addrs,
        epoch0,
        Arc::clone(&conns),
    )));
    let limit_ns = k + u64::try_from(BACK_LIMIT.as_nanos()).unwrap_or(u64::MAX);
    let mut election_ns = None;
    let (w_ns, tcp1, poller_conns) = if killed.is_err() {
        (
            mono_ns(),
            TcpCounters::read(),
            conns.load(Ordering::Relaxed),
        )
    } else if members.is_empty() {
        if let Some(h) = poller.take() {
            election_ns = h.await.ok().flatten();
        }
        (
            mono_ns(),
            TcpCounters::read(),
            conns.load(Ordering::Relaxed),
        )
    } else {
        loop {
            let now = mono_ns();
            if now >= limit_ns || all_back(&members, k) {
                break (now, TcpCounters::read(), conns.load(Ordering::Relaxed));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (fleet1, surv1) = (threads_cpu_of(&fleet_pids), cpu_of(&survivor_pids));
    step("window closed");
    if let Some(h) = poller.take() {
        election_ns = h.await.ok().flatten();
    }
    let mut o = Outcome {
        members: members.len(),
        election: election_ns.map(|e| Duration::from_nanos(e.saturating_sub(k))),
        window: Duration::from_nanos(w_ns.saturating_sub(k)),
        tcp: tcp0.delta(tcp1),
        poller_conns,
        survivors_cpu: cpu_delta(&surv0, &surv1),
        fleet_cpu: cpu_delta(&fleet0, &fleet1),
        ..Outcome::default()
    };
    // Let late session-expiry lines arrive, then stop the fleet.
    if let Some(w) = who {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for m in &members {
            let g = m.log();
            match g.back(k) {
                Some(b) if b <= w_ns.saturating_sub(k) => o.back.push(ns_ms(b)),
                _ => o.not_back += 1,
            }
            if g.lost.is_some() {
                o.lost += 1;
            }
        }
        let logs: Vec<Arc<Mutex<Log>>> = members.iter().map(|m| Arc::clone(&m.log)).collect();
        finish_fleet(w, members, pool).await;
        // `end <reads> <failed> <attempts|-> <session changed>` (Rust members).
        let mut attempts = Some(0);
        for l in &logs {
            let end = l.lock().unwrap().end.clone().unwrap_or_default();
            let f: Vec<&str> = end.split_whitespace().collect();
            if f.first() != Some(&"end") {
                attempts = None;
                continue;
            }
            attempts = attempts
                .zip(f.get(3).and_then(|a| a.parse::<u64>().ok()))
                .map(|(a, b)| a + b);
            if f.get(4) == Some(&"1") && l.lock().unwrap().lost.is_none() {
                o.lost += 1;
            }
        }
        o.client_attempts = attempts;
    }
    killed?;
    Ok(o)
}

/// The member processes' side: one session, a read of `/probe` every 100 ms, one line per event
/// on stdout (`ready <session>`, then `d <ns>`, `u <ns>`, `x <ns>`; `end <reads> <failed>
/// <attempts> <session changed>` when stdin closes, before the session is closed).
mod member {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tokio::sync::oneshot;
    use zk_client::{Client, SessionState};

    use super::{PATH, READ_PERIOD, T6, mono_at, mono_ns};

    /// Runs the member mode `kind`; returns the exit code.
    pub(super) fn run(kind: &str) -> i32 {
        let Ok(connstr) = std::env::var(super::CONNECT_ENV) else {
            println!("err no {}", super::CONNECT_ENV);
            return 2;
        };
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                println!("err runtime: {e}");
                return 2;
            }
        };
        // Stop when stdin closes (the parent closed it, or died).
        let (tx, stop) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
                line.clear();
            }
            let _ = tx.send(());
        });
        let r = rt.block_on(async {
            match kind {
                "zk-failover" => ours(&connstr, stop).await,
                "zookeeper-client" => zkc(&connstr, stop).await,
                other => Err(format!("unknown member kind {other}")),
            }
        });
        match r {
            Ok(()) => 0,
            Err(e) => {
                println!("err {e}");
                1
            }
        }
    }

    /// The next read's deadline: 100 ms after the previous one, or now if that has passed.
    fn next_tick(next: tokio::time::Instant) -> tokio::time::Instant {
        let n = next + READ_PERIOD;
        n.max(tokio::time::Instant::now())
    }

    async fn ours(connstr: &str, mut stop: oneshot::Receiver<()>) -> Result<(), String> {
        // Default settings: only the session timeout is set, as in every benchmark.
        // (`ZK_FLEET_NO_LEARN=1`, for experiments: election learning off.)
        let mut builder = Client::builder(connstr).session_timeout(T6);
        if std::env::var_os("ZK_FLEET_NO_LEARN").is_some() {
            builder = builder.configure_session(|cfg| cfg.timing.election.learn = false);
        }
        let c = builder
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let sid = c.session_id();
        c.get_data(PATH)
            .await
            .map_err(|e| format!("first read: {e}"))?;
        let n0 = c.counters().session;
        let down = Arc::new(AtomicBool::new(false));
        let mut rx = c.state_stream();
        let d2 = Arc::clone(&down);
        let watcher = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let ch = rx.borrow_and_update().clone();
                let at = mono_at(ch.at);
                if ch.state == SessionState::Disconnected {
                    d2.store(true, Ordering::SeqCst);
                    println!("d {at}");
                }
                if (ch.state.is_terminal() && ch.state != SessionState::Closed)
                    || (ch.session_id != 0 && ch.session_id != sid)
                {
                    println!("x {at}");
                    break;
                }
            }
        });
        println!("ready {sid:x}");
        let (mut reads, mut fails, mut reconnects) = (0u64, 0u64, n0.reconnects);
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                r = c.get_data(PATH) => {
                    let t = mono_ns();
                    reads += 1;
                    if r.is_ok() {
                        let n = c.counters().session;
                        let mut was_down = down.swap(false, Ordering::SeqCst);
                        if n.reconnects > reconnects {
                            // Reads are re-sent across a reconnect instead of failing: the
                            // disconnection instant is the reconnect's minus its pause.
                            reconnects = n.reconnects;
                            was_down = true;
                            let at = mono_at(c.state_stream().borrow().at);
                            let pause = n.last_pause.unwrap_or_default();
                            let pause = u64::try_from(pause.as_nanos()).unwrap_or(0);
                            println!("d {}", at.saturating_sub(pause));
                        }
                        if was_down {
                            println!("u {t}");
                        }
                    } else {
                        fails += 1;
                        down.store(true, Ordering::SeqCst);
                        println!("d {t}");
                    }
                }
            }
            next = next_tick(next);
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep_until(next) => {}
            }
        }
        let n = c.counters().session;
        println!(
            "end {reads} {fails} {} {}",
            n.attempts - n0.attempts,
            u8::from(c.session_id() != sid)
        );
        watcher.abort();
        let _ = tokio::time::timeout(Duration::from_secs(3), c.close()).await;
        Ok(())
    }

    async fn zkc(connstr: &str, mut stop: oneshot::Receiver<()>) -> Result<(), String> {
        let c = zookeeper_client::Client::connector()
            .with_session_timeout(T6)
            .connect(connstr)
            .await
            .map_err(|e| format!("zookeeper-client connect: {e}"))?;
        let sid = c.session_id().0;
        c.get_data(PATH)
            .await
            .map_err(|e| format!("first read: {e}"))?;
        let down = Arc::new(AtomicBool::new(false));
        let mut w = c.state_watcher();
        let mut closed = c.state_watcher();
        let d2 = Arc::clone(&down);
        let watcher = tokio::spawn(async move {
            loop {
                let s = w.changed().await;
                if s == zookeeper_client::SessionState::Disconnected {
                    d2.store(true, Ordering::SeqCst);
                    println!("d {}", mono_ns());
                }
                if s.is_terminated() {
                    if s != zookeeper_client::SessionState::Closed {
                        println!("x {}", mono_ns());
                    }
                    break;
                }
            }
        });
        println!("ready {sid:x}");
        let (mut reads, mut fails, mut changed) = (0u64, 0u64, false);
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                r = c.get_data(PATH) => {
                    let t = mono_ns();
                    reads += 1;
                    if r.is_ok() {
                        if down.swap(false, Ordering::SeqCst) {
                            println!("u {t}");
                        }
                    } else {
                        fails += 1;
                        down.store(true, Ordering::SeqCst);
                        println!("d {t}");
                    }
                    if !changed && c.session_id().0 != sid {
                        changed = true;
                        println!("x {t}");
                    }
                }
            }
            next = next_tick(next);
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep_until(next) => {}
            }
        }
        println!("end {reads} {fails} - {}", u8::from(changed));
        watcher.abort();
        // Dropping the last handle sends CloseSession; wait for it to go out.
        drop(c);
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while !closed.changed().await.is_terminated() {}
        })
        .await;
        Ok(())
    }
}
