//! Steady-state benchmarks on a real 3-node ZooKeeper ensemble (`zk-testkit`), side by side with
//! `zookeeper-client` 0.11 (Rust) and the official Java client 3.8 (through
//! `benches/java/ZkProbe.java`), all connected to the same follower, in the same run:
//!
//! - `steady/read/<client>/<in flight>` and `steady/write/<client>/<in flight>`: `getData` /
//!   `setData` of a 16-byte node with 1, 16 and 256 requests in flight (criterion, ops/s);
//!   the client's CPU per operation is recorded alongside (run time of every thread of the client
//!   process from `/proc/<pid>/task/*/schedstat`; no `getrusage`, which would need `unsafe`);
//! - sequential read latency (2,000 timed `getData` per client, the Rust clients interleaved
//!   in chunks of 50; p50/p99);
//! - memory per idle session: RSS growth (`/proc/<pid>/statm`) of a fresh process opening 1,000
//!   idle sessions;
//! - `steady/batching`: zk-failover alone, reply batching on ÷ off in paired rounds, over plain
//!   TCP and then over mutual TLS (a second ensemble, started once the first is gone);
//! - `steady/metrics`: zk-failover alone, metrics on (a Prometheus recorder, rendered once per
//!   round like a scrape) ÷ off (no recorder: the facade's no-op handles) in paired rounds.
//!
//! The servers run with `-XX:TieredStopAtLevel=4` (C2, unlike the testkit's fast-start default)
//! because their throughput is part of what is measured. The three JVMs share the machine with
//! the client, so the client's own CPU matters.
//!
//! `cargo bench -p zk-bench --bench steady` measures; `cargo test --all-targets` (or `-- --test`) runs every
//! benchmark once. Raw results: `target/bench-results/steady.{tsv,json}`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark code")]

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use support::clients::{Who, varied_seed};
use support::harness::{Args, Mode, Results, median, sorted};
use support::java::{self, JavaProbe};
use support::{report, sys};
use zk_client::{Client, CreateMode, acl};
use zk_testkit::Ensemble;

const T: Duration = Duration::from_secs(6);
const IN_FLIGHT: [usize; 3] = [1, 16, 256];
const PAYLOAD: [u8; 16] = [0x5a; 16];
/// Paired rounds of the pipelined-read comparison, and reads per client per round.
const PAIRED_ROUNDS: usize = 8;
const PAIRED_READS: u64 = 60_000;
/// Paired rounds of reply batching on and off, and reads per setting per round.
const BATCHING_ROUNDS: usize = 6;
const BATCHING_READS: u64 = 40_000;
/// Paired rounds of metrics on and off (the difference is small: more rounds for the median).
const METRICS_ROUNDS: usize = 10;

#[derive(Clone)]
enum Rc {
    Ours(Client),
    Zkc(zookeeper_client::Client),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Runs `n` operations with `in_flight` outstanding; returns the wall time.
async fn run_ops(c: &Rc, op: Op, in_flight: usize, n: u64) -> Duration {
    let left = Arc::new(AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX)));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(in_flight);
    for _ in 0..in_flight
        .min(usize::try_from(n).unwrap_or(usize::MAX))
        .max(1)
    {
        let left = Arc::clone(&left);
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                let ok = match (&c, op) {
                    (Rc::Ours(c), Op::Read) => c.get_data("/probe").await.is_ok(),
                    (Rc::Ours(c), Op::Write) => {
                        c.set_data("/probe", &PAYLOAD[..], -1).await.is_ok()
                    }
                    (Rc::Zkc(c), Op::Read) => c.get_data("/probe").await.is_ok(),
                    (Rc::Zkc(c), Op::Write) => c.set_data("/probe", &PAYLOAD, None).await.is_ok(),
                };
                assert!(ok, "operation failed in steady state");
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker task");
    }
    t0.elapsed()
}

/// Totals over every criterion call of one benchmark: ops, wall time, client CPU.
#[derive(Default, Clone, Copy)]
struct Tally {
    ops: u64,
    wall: Duration,
    cpu: Duration,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--idle-child") {
        idle_child(&argv[2..]);
        return;
    }
    if argv.iter().any(|a| a == "--report-only") {
        report::render();
        return;
    }
    let args = Args::parse();
    if args.mode == Mode::List {
        for op in ["read", "write"] {
            for who in [Who::Ours, Who::Zkc, Who::Java] {
                for k in IN_FLIGHT {
                    println!("steady/{op}/{}/{k}: benchmark", who.key());
                }
            }
        }
        println!(
            "steady/paired: benchmark\nsteady/latency: benchmark\nsteady/idle_memory: benchmark\n\
             steady/batching: benchmark\nsteady/metrics: benchmark"
        );
        return;
    }
    let started = Instant::now();
    // `ZK_BENCH_RT=current` runs the clients on a current-thread runtime (a diagnostic: it
    // removes cross-thread wake-ups between the caller and the engine task).
    let rt = Arc::new(
        if std::env::var("ZK_BENCH_RT").as_deref() == Ok("current") {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        }
        .expect("tokio runtime"),
    );
    let ens = rt.block_on(async {
        Ensemble::builder()
            .nodes(3)
            .tick_time(Duration::from_millis(200))
            .config("maxClientCnxns", "0")
            .jvm_flag("-XX:TieredStopAtLevel=4")
            .start()
            .await
            .expect("start the 3-node ensemble")
    });
    let (connstr, ours, zkc) = rt.block_on(async {
        let leader = ens
            .wait_for_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        let node = (leader + 1) % 3;
        let connstr = ens.node(node).client_addr().to_string();
        let ours = Client::builder(&connstr)
            .session_timeout(T)
            .configure_session(|cfg| cfg.rng_seed = Some(varied_seed()))
            .connect()
            .await
            .expect("zk-client connect");
        ensure_probe(&ours).await;
        let zkc = zookeeper_client::Client::connector()
            .with_session_timeout(T)
            .connect(&connstr)
            .await
            .expect("zookeeper-client connect");
        (connstr, ours, zkc)
    });
    let java_cp = java::prepare()
        .map_err(|e| eprintln!("steady: Java client skipped: {e}"))
        .ok();
    let java = java_cp.as_deref().and_then(|cp| {
        let mut p = JavaProbe::spawn(cp).ok()?;
        p.cmd(&format!("connect {connstr} {}", T.as_millis()))
            .ok()?;
        Some(Arc::new(Mutex::new(p)))
    });

    // Warm the servers' JIT (C2) and the clients before anything is measured, so the client
    // measured first is not penalised.
    if args.mode == Mode::Bench {
        rt.block_on(async {
            for _ in 0..3 {
                for c in [Rc::Ours(ours.clone()), Rc::Zkc(zkc.clone())] {
                    run_ops(&c, Op::Read, 64, 40_000).await;
                    run_ops(&c, Op::Write, 64, 4_000).await;
                }
            }
        });
        if let Some(j) = &java {
            let mut p = j.lock().unwrap();
            let _ = p.cmd("pipe 64 60000 r");
            let _ = p.cmd("pipe 64 6000 w");
        }
    }
    let mut results = Results::default();
    let tallies: Arc<Mutex<Vec<(String, Tally)>>> = Arc::default();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();

    for op in [Op::Read, Op::Write] {
        let mut group = c.benchmark_group(format!("steady/{}", op.name()));
        group.throughput(Throughput::Elements(1));
        // k-major, with the client order rotated per k, so no client is always measured
        // first (the servers' JIT keeps improving for a while even after the warm-up).
        for (round, k) in IN_FLIGHT.into_iter().enumerate() {
            let mut order = [Who::Ours, Who::Zkc, Who::Java];
            order.rotate_left(round % 3);
            for who in order {
                let key = format!("{}/{}/{k}", op.name(), who.key());
                let id = BenchmarkId::new(who.key(), k);
                let tallies = Arc::clone(&tallies);
                let add = move |ops: u64, wall: Duration, cpu: Duration| {
                    let mut g = tallies.lock().unwrap();
                    if let Some((_, t)) = g.iter_mut().find(|(k2, _)| *k2 == key) {
                        t.ops += ops;
                        t.wall += wall;
                        t.cpu += cpu;
                    } else {
                        g.push((key.clone(), Tally { ops, wall, cpu }));
                    }
                };
                match who {
                    Who::Ours | Who::Zkc => {
                        let client = if who == Who::Ours {
                            Rc::Ours(ours.clone())
                        } else {
                            Rc::Zkc(zkc.clone())
                        };
                        let rt = Arc::clone(&rt);
                        group.bench_function(id, |b| {
                            b.iter_custom(|iters| {
                                let cpu0 = sys::threads_cpu(None, "");
                                let wall = rt.block_on(run_ops(&client, op, k, iters));
                                add(iters, wall, sys::threads_cpu(None, "").saturating_sub(cpu0));
                                wall
                            });
                        });
                    }
                    Who::Java => {
                        let Some(j) = java.clone() else { continue };
                        group.bench_function(id, |b| {
                            b.iter_custom(|iters| {
                                let mut p = j.lock().unwrap();
                                let pid = p.pid();
                                let cpu0 = sys::threads_cpu(Some(pid), "");
                                let w = p
                                    .cmd(&format!(
                                        "pipe {k} {iters} {}",
                                        if op == Op::Read { "r" } else { "w" }
                                    ))
                                    .expect("java pipe");
                                let cpu = sys::threads_cpu(Some(pid), "").saturating_sub(cpu0);
                                let ns = java::num(&w, 1).expect("java pipe reply");
                                let wall = Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
                                add(iters, wall, cpu);
                                wall
                            });
                        });
                    }
                }
            }
        }
        group.finish();
    }
    for (key, t) in tallies.lock().unwrap().iter() {
        let (op, rest) = key.split_once('/').unwrap();
        let (who, k) = rest.rsplit_once('/').unwrap();
        let group = format!("{op}_{k}");
        let ops_s = t.ops as f64 / t.wall.as_secs_f64().max(1e-9);
        let cpu_us = t.cpu.as_secs_f64() * 1e6 / (t.ops.max(1) as f64);
        println!("steady/{key}: {ops_s:.0} ops/s, client CPU {cpu_us:.1} µs/op");
        results.add(&group, who, "ops_per_s", vec![ops_s]);
        results.add(&group, who, "cpu_us_per_op", vec![cpu_us]);
    }

    // Diagnostic: the distribution of back-to-back sequential reads in one task.
    if std::env::var_os("ZK_BENCH_B2B").is_some() {
        for (name, client) in [
            ("zk-failover", Rc::Ours(ours.clone())),
            ("zookeeper-client", Rc::Zkc(zkc.clone())),
        ] {
            let v = rt.block_on(async {
                let c = client.clone();
                tokio::spawn(async move {
                    let mut v = Vec::new();
                    for _ in 0..3000 {
                        let t0 = Instant::now();
                        match &c {
                            Rc::Ours(c) => drop(c.get_data("/probe").await),
                            Rc::Zkc(c) => drop(c.get_data("/probe").await),
                        }
                        v.push(t0.elapsed().as_secs_f64() * 1e6);
                    }
                    v
                })
                .await
                .unwrap()
            });
            let s = sorted(&v);
            println!(
                "b2b/{name}: p10 {:.0} p50 {:.0} p90 {:.0} p99 {:.0} mean {:.0} µs",
                s[s.len() / 10],
                s[s.len() / 2],
                s[s.len() * 9 / 10],
                s[s.len() * 99 / 100],
                v.iter().sum::<f64>() / v.len() as f64
            );
        }
    }
    // Paired rounds for the pipelined-read target: the two Rust clients alternate (ABBA) with
    // the same number of reads each, so the servers' drift (JIT, GC) weighs on both alike; the
    // ratio is taken per round. Criterion's rows above measure each client in one block.
    if args.mode == Mode::Bench && args.selected("steady/paired") {
        let p = paired_rounds(
            &rt,
            [
                ("zk-failover", Rc::Ours(ours.clone())),
                ("zookeeper-client", Rc::Zkc(zkc.clone())),
            ],
            PAIRED_ROUNDS,
            PAIRED_READS,
            "steady/paired",
        );
        println!(
            "steady/paired: 256 reads in flight, {PAIRED_ROUNDS} rounds: ops/s ratio median {:.2}×, CPU/op ratio median {:.2}×",
            median(&p.ops_ratio),
            median(&p.cpu_ratio)
        );
        results.add("paired_read_256", "zk-failover", "ops_ratio", p.ops_ratio);
        results.add("paired_read_256", "zk-failover", "cpu_ratio", p.cpu_ratio);
    }

    // Reply batching on and off over plain TCP (the TLS rounds run at the end, on a server
    // of their own).
    if args.selected("steady/batching") {
        let off = rt.block_on(connect_ours(&connstr, None, false));
        batching_rounds(&rt, &args, "plain", &ours, &off, &mut results);
        rt.block_on(off.close());
    }

    // Metrics on (a Prometheus recorder, rendered once per round like a scrape) ÷ off.
    if args.selected("steady/metrics") {
        metrics_rounds(&rt, &args, &ours, &mut results);
    }

    // Sequential read latency: individually timed reads.
    if args.selected("steady/latency") {
        let n = if args.mode == Mode::Bench { 2000 } else { 50 };
        // Interleaved in chunks of 50 reads (A B A B …), so a server pause (GC, JIT) weighs
        // on both clients alike instead of on whichever ran during it.
        let clients = [
            (Who::Ours, Rc::Ours(ours.clone())),
            (Who::Zkc, Rc::Zkc(zkc.clone())),
        ];
        let mut lat = [Vec::with_capacity(n), Vec::with_capacity(n)];
        rt.block_on(async {
            while lat[0].len() < n {
                for ((_, client), v) in clients.iter().zip(lat.iter_mut()) {
                    for _ in 0..50.min(n - v.len()) {
                        let t0 = Instant::now();
                        run_ops(client, Op::Read, 1, 1).await;
                        v.push(t0.elapsed().as_secs_f64() * 1e6);
                    }
                }
            }
        });
        for ((who, _), v) in clients.iter().zip(&lat) {
            report_latency(&mut results, *who, v);
        }
        if let Some(j) = &java {
            let w = j
                .lock()
                .unwrap()
                .cmd(&format!("seq {n}"))
                .expect("java seq");
            let p50 = java::num(&w, 2).unwrap_or(0) as f64 / 1000.0;
            let p99 = java::num(&w, 3).unwrap_or(0) as f64 / 1000.0;
            println!("steady/latency/java: p50 {p50:.0} µs, p99 {p99:.0} µs");
            results.add("latency", Who::Java.key(), "p50_us", vec![p50]);
            results.add("latency", Who::Java.key(), "p99_us", vec![p99]);
        }
    }
    c.final_summary();
    drop(java);
    rt.block_on(async {
        ours.close().await;
    });
    drop(zkc);

    // Memory per idle session, each client in a fresh process.
    if args.selected("steady/idle_memory") {
        let n = if args.mode == Mode::Bench { 1000 } else { 20 };
        let all = ens.direct_connect_string();
        for who in [Who::Ours, Who::Zkc, Who::Java] {
            if who == Who::Java && java_cp.is_none() {
                continue;
            }
            match idle_parent(who, &all, n, java_cp.as_deref()) {
                Ok(bytes) => {
                    println!(
                        "steady/idle_memory/{}: {:.1} KiB RSS per idle session ({n} sessions)",
                        who.key(),
                        bytes / 1024.0
                    );
                    results.add(
                        "idle",
                        who.key(),
                        "rss_kib_per_session",
                        vec![bytes / 1024.0],
                    );
                }
                Err(e) => {
                    println!("steady/idle_memory/{}: FAILED: {e}", who.key());
                    if who == Who::Ours {
                        panic!("idle memory: {e}");
                    }
                }
            }
        }
    }
    // Reply batching over TLS: a standalone server with a `secureClientPort` (Netty), started
    // once the ensemble is gone so the two do not share the cores.
    drop(ens);
    if args.selected("steady/batching") {
        tls_batching(&rt, &args, &mut results);
    }
    let name = if args.mode == Mode::Bench {
        "steady"
    } else {
        "steady-smoke"
    };
    if !args.filters.is_empty() {
        results = Results::read(name).merged_with(results);
    }
    match results.write(name) {
        Ok(p) => println!("steady: results in {}", p.display()),
        Err(e) => eprintln!("steady: cannot write results: {e}"),
    }
    if args.mode == Mode::Bench && std::env::var_os("ZK_BENCH_DOCS").is_some() {
        report::render();
    }
    println!(
        "steady: finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// What [`paired_rounds`] measured: per round, the first client's ops/s and CPU per read
/// divided by the second's, and each client's CPU per read (µs).
struct Paired {
    ops_ratio: Vec<f64>,
    cpu_ratio: Vec<f64>,
    cpu: [Vec<f64>; 2],
}

/// Two clients alternate (ABBA) with the same `n` reads each, 256 in flight, so the servers'
/// drift (JIT, GC) weighs on both alike; the ratios are taken per round.
fn paired_rounds(
    rt: &tokio::runtime::Runtime,
    clients: [(&str, Rc); 2],
    rounds: usize,
    n: u64,
    label: &str,
) -> Paired {
    paired_rounds_with(rt, clients, rounds, n, label, |_| {})
}

/// [`paired_rounds`], calling `before(i)` before side `i` runs (inside its measured window).
fn paired_rounds_with(
    rt: &tokio::runtime::Runtime,
    clients: [(&str, Rc); 2],
    rounds: usize,
    n: u64,
    label: &str,
    before: impl Fn(usize),
) -> Paired {
    let mut p = Paired {
        ops_ratio: Vec::new(),
        cpu_ratio: Vec::new(),
        cpu: [Vec::new(), Vec::new()],
    };
    for round in 0..rounds {
        let mut order = [0, 1];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut got = [(0.0, 0.0); 2];
        for i in order {
            let cpu0 = sys::threads_cpu(None, "");
            before(i);
            let wall = rt.block_on(run_ops(&clients[i].1, Op::Read, 256, n));
            let cpu = sys::threads_cpu(None, "").saturating_sub(cpu0);
            got[i] = (
                n as f64 / wall.as_secs_f64().max(1e-9),
                cpu.as_secs_f64() * 1e6 / n as f64,
            );
        }
        println!(
            "{label}/{round}: {} {:.0} ops/s {:.1} µs/op, {} {:.0} ops/s {:.1} µs/op",
            clients[0].0, got[0].0, got[0].1, clients[1].0, got[1].0, got[1].1
        );
        p.ops_ratio.push(got[0].0 / got[1].0);
        p.cpu_ratio.push(got[0].1 / got[1].1);
        p.cpu[0].push(got[0].1);
        p.cpu[1].push(got[1].1);
    }
    p
}

/// Creates `/probe`, the node every benchmark reads, unless it exists.
async fn ensure_probe(c: &Client) {
    match c
        .create(
            "/probe",
            &PAYLOAD[..],
            &acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists) => {}
        Err(e) => panic!("create /probe: {e}"),
    }
}

/// A zk-failover client on `connstr` (over TLS with `tls`), with reply batching on or off.
async fn connect_ours(connstr: &str, tls: Option<zk_client::TlsConfig>, batching: bool) -> Client {
    let mut b = Client::builder(connstr)
        .session_timeout(T)
        .configure_session(move |cfg| {
            cfg.rng_seed = Some(varied_seed());
            cfg.reply_batching = batching;
        });
    if let Some(t) = tls {
        b = b.tls(t);
    }
    b.connect().await.expect("zk-client connect")
}

/// Paired rounds of 256 reads in flight, batching on and off alternating (ABBA), the same
/// number of reads each: ops/s and client CPU per read, and their ratios on ÷ off per round.
fn batching_rounds(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    transport: &str,
    on: &Client,
    off: &Client,
    results: &mut Results,
) {
    let (rounds, n) = if args.mode == Mode::Bench {
        (BATCHING_ROUNDS, BATCHING_READS)
    } else {
        (1, 300)
    };
    let p = paired_rounds(
        rt,
        [("on", Rc::Ours(on.clone())), ("off", Rc::Ours(off.clone()))],
        rounds,
        n,
        &format!("steady/batching/{transport}"),
    );
    let [on_cpu, off_cpu] = p.cpu;
    println!(
        "steady/batching/{transport}: 256 reads in flight, {rounds} rounds, on ÷ off: ops/s {:.2}×, CPU/op {:.2}× ({:.1} vs {:.1} µs)",
        median(&p.ops_ratio),
        median(&p.cpu_ratio),
        median(&on_cpu),
        median(&off_cpu)
    );
    let group = format!("batching_{transport}");
    results.add(&group, "zk-failover", "ops_ratio", p.ops_ratio);
    results.add(&group, "zk-failover", "cpu_ratio", p.cpu_ratio);
    results.add(&group, "zk-failover", "cpu_us_on", on_cpu);
    results.add(&group, "zk-failover", "cpu_us_off", off_cpu);
}

/// Switches the process's metrics between a Prometheus recorder and nothing (the facade's
/// no-op handles: what a build with the `metrics` feature costs before anyone installs a
/// recorder).
struct Switch {
    on: std::sync::atomic::AtomicBool,
    prometheus: metrics_exporter_prometheus::PrometheusRecorder,
}

impl metrics::Recorder for Switch {
    fn describe_counter(
        &self,
        k: metrics::KeyName,
        u: Option<metrics::Unit>,
        d: metrics::SharedString,
    ) {
        self.prometheus.describe_counter(k, u, d);
    }
    fn describe_gauge(
        &self,
        k: metrics::KeyName,
        u: Option<metrics::Unit>,
        d: metrics::SharedString,
    ) {
        self.prometheus.describe_gauge(k, u, d);
    }
    fn describe_histogram(
        &self,
        k: metrics::KeyName,
        u: Option<metrics::Unit>,
        d: metrics::SharedString,
    ) {
        self.prometheus.describe_histogram(k, u, d);
    }
    fn register_counter(&self, k: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Counter {
        if self.on.load(Ordering::Relaxed) {
            self.prometheus.register_counter(k, m)
        } else {
            metrics::Counter::noop()
        }
    }
    fn register_gauge(&self, k: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Gauge {
        if self.on.load(Ordering::Relaxed) {
            self.prometheus.register_gauge(k, m)
        } else {
            metrics::Gauge::noop()
        }
    }
    fn register_histogram(
        &self,
        k: &metrics::Key,
        m: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        if self.on.load(Ordering::Relaxed) {
            self.prometheus.register_histogram(k, m)
        } else {
            metrics::Histogram::noop()
        }
    }
}

/// Paired rounds of 256 reads in flight with metrics recorded (a Prometheus recorder, its
/// text rendered once per round) and not, on the same client: ops/s and CPU per read.
fn metrics_rounds(rt: &tokio::runtime::Runtime, args: &Args, ours: &Client, results: &mut Results) {
    let (rounds, n) = if args.mode == Mode::Bench {
        (METRICS_ROUNDS, BATCHING_READS)
    } else {
        (1, 300)
    };
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = prometheus.handle();
    let switch: &'static Switch = Box::leak(Box::new(Switch {
        on: std::sync::atomic::AtomicBool::new(false),
        prometheus,
    }));
    if metrics::set_global_recorder(switch).is_err() {
        println!("steady/metrics: a recorder is already installed; skipped");
        return;
    }
    let p = paired_rounds_with(
        rt,
        [
            ("on", Rc::Ours(ours.clone())),
            ("off", Rc::Ours(ours.clone())),
        ],
        rounds,
        n,
        "steady/metrics",
        |i| {
            switch.on.store(i == 0, Ordering::Relaxed);
            if i == 0 {
                std::hint::black_box(handle.render());
            }
        },
    );
    let [on_cpu, off_cpu] = p.cpu;
    println!(
        "steady/metrics: 256 reads in flight, {rounds} rounds, on ÷ off: ops/s {:.2}×, CPU/op {:.3}× ({:.1} vs {:.1} µs)",
        median(&p.ops_ratio),
        median(&p.cpu_ratio),
        median(&on_cpu),
        median(&off_cpu)
    );
    results.add("metrics", "zk-failover", "ops_ratio", p.ops_ratio);
    results.add("metrics", "zk-failover", "cpu_ratio", p.cpu_ratio);
    results.add("metrics", "zk-failover", "cpu_us_on", on_cpu);
    results.add("metrics", "zk-failover", "cpu_us_off", off_cpu);
}

/// [`batching_rounds`] over TLS 1.2 with client certificates, on a 3-node ensemble of its own
/// (TLS needs Netty's connection factory) and, like the plain rounds, on a follower's
/// `secureClientPort` (Netty writes each reply as a TLS record of its own).
fn tls_batching(rt: &tokio::runtime::Runtime, args: &Args, results: &mut Results) {
    let (node, cs) = rt.block_on(async {
        let ens = Ensemble::builder()
            .nodes(3)
            .tick_time(Duration::from_millis(200))
            .config("maxClientCnxns", "0")
            .jvm_flag("-XX:TieredStopAtLevel=4")
            .tls(zk_testkit::TlsOptions::default())
            .start()
            .await
            .expect("start the TLS ensemble");
        let leader = ens
            .wait_for_leader(Duration::from_secs(30))
            .await
            .expect("leader");
        let follower = ens.node((leader + 1) % 3);
        let cs = follower.secure_addr().expect("a secure port").to_string();
        (ens, cs)
    });
    let m = node.tls().expect("TLS material").clone();
    let config = || {
        zk_client::TlsConfig::builder()
            .ca_pem(&m.ca_pem)
            .expect("CA")
            .client_cert_pem(&m.client_cert_pem, &m.client_key_pem)
            .expect("client certificate")
            .build()
            .expect("TLS config")
    };
    let (on, off) = rt.block_on(async {
        let on = connect_ours(&cs, Some(config()), true).await;
        let off = connect_ours(&cs, Some(config()), false).await;
        ensure_probe(&on).await;
        if args.mode == Mode::Bench {
            // The new server's JIT, as for the ensemble.
            for _ in 0..3 {
                for c in [&on, &off] {
                    run_ops(&Rc::Ours(c.clone()), Op::Read, 64, 40_000).await;
                }
            }
        }
        (on, off)
    });
    batching_rounds(rt, args, "tls", &on, &off, results);
    rt.block_on(async {
        on.close().await;
        off.close().await;
    });
    drop(node);
}

fn report_latency(results: &mut Results, who: Who, lat_us: &[f64]) {
    let s = sorted(lat_us);
    let p99 = s.get(s.len() * 99 / 100).copied().unwrap_or(f64::NAN);
    println!(
        "steady/latency/{}: p50 {:.0} µs, p99 {p99:.0} µs",
        who.key(),
        median(lat_us)
    );
    results.add("latency", who.key(), "p50_us", vec![median(lat_us)]);
    results.add("latency", who.key(), "p99_us", vec![p99]);
}

/// RSS growth per idle session, measured in a child process (a fresh heap per client).
fn idle_parent(who: Who, connstr: &str, n: usize, java_cp: Option<&str>) -> Result<f64, String> {
    if who == Who::Java {
        let mut p = JavaProbe::spawn(java_cp.ok_or("no java")?)?;
        p.cmd(&format!("connect {connstr} {}", T.as_millis()))?;
        std::thread::sleep(Duration::from_millis(500));
        let before = sys::rss_bytes(Some(p.pid()));
        p.cmd(&format!("idle {connstr} {n} {}", T.as_millis()))?;
        std::thread::sleep(Duration::from_secs(2));
        let after = sys::rss_bytes(Some(p.pid()));
        return Ok((after.saturating_sub(before)) as f64 / n as f64);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(["--idle-child", who.key(), connstr, &n.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("rss_per_session "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "child said: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// `--idle-child <client> <connstr> <n>`: open one session (one-time costs), measure RSS, open
/// `n` more, wait, measure again; print the growth per session.
fn idle_child(args: &[String]) {
    let who = args.first().map(String::as_str).unwrap_or_default();
    let connstr = args.get(1).cloned().unwrap_or_default();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let ours = who == Who::Ours.key();
        let open = |cs: String| async move {
            if ours {
                Client::builder(&cs)
                    .session_timeout(T)
                    .configure_session(|cfg| cfg.rng_seed = Some(varied_seed()))
                    .connect()
                    .await
                    .map(|c| Box::new(c) as Box<dyn std::any::Any + Send>)
                    .map_err(|e| e.to_string())
            } else {
                zookeeper_client::Client::connector()
                    .with_session_timeout(T)
                    .connect(&cs)
                    .await
                    .map(|c| Box::new(c) as Box<dyn std::any::Any + Send>)
                    .map_err(|e| e.to_string())
            }
        };
        let first = open(connstr.clone()).await.expect("first session");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = sys::rss_bytes(None);
        let mut held = Vec::with_capacity(n);
        while held.len() < n {
            let mut tasks = Vec::new();
            for _ in 0..50.min(n - held.len()) {
                tasks.push(tokio::spawn(open(connstr.clone())));
            }
            for t in tasks {
                held.push(t.await.expect("task").expect("idle session"));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = sys::rss_bytes(None);
        println!(
            "rss_per_session {}",
            after.saturating_sub(before) as f64 / n as f64
        );
        drop(held);
        drop(first);
    });
}
