//! Failover benchmarks on a real 3-node ZooKeeper ensemble (`zk-testkit`), side by side with
//! `zookeeper-client` 0.11 (Rust) and the official Java client 3.8, in the same run.
//!
//! Each sample needs an ensemble action (kill −9, SIGSTOP, blackhole, restart), so this is a
//! criterion-compatible custom harness rather than `criterion::Criterion`: it accepts the same
//! command line (`--bench` measures, `--test` or no `--bench` = smoke mode with one quick sample
//! per scenario, `--list`, name filters) and records every raw sample in
//! `target/bench-results/failover.{tsv,json}` (smoke runs: `failover-smoke.*`).
//!
//! ```text
//! cargo bench -p zk-bench --bench failover                 # measurement (a few minutes)
//! cargo bench -p zk-bench --bench failover -- --test       # smoke: one sample per scenario, asserts only
//! cargo bench -p zk-bench --bench failover -- crash_leader --samples 20
//! ZK_BENCH_VERBOSE=1 ZK_BENCH_LOG=zk_session=debug cargo bench -p zk-bench --bench failover -- crash_follower/zk-failover
//! ```
//!
//! `ZK_BENCH_VERBOSE=1` prints each step and, for this project's client, how a pause splits
//! into the handshake and the first read; `ZK_BENCH_LOG` (an `EnvFilter`) adds the engine's
//! logs with timestamps (connect start, TCP connected, session re-established).
//!
//! Scenarios (T = negotiated session timeout, 6 s unless named): `floor`,
//! `floor_after_crash` (the bare protocol failing over once after a kill −9), `crash_follower`,
//! `crash_leader` (with the election time), `freeze`, `freeze_adaptive_6s`,
//! `freeze_adaptive_30s`, `freeze_30s` (peers' default detectors at T = 30 s),
//! `freeze_two_of_three`, `storm`, `rolling_replacement` (servers 1–3 replaced by 4–6 at run
//! time; the peers on their static lists). Definitions are in `support/clients.rs` and
//! `docs/benchmarks.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark code")]

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::clients::{self, Auth, Detector, Outcome, Subject, Who};
use support::harness::{Args, Mode, Results, median};
use support::java::{self, JavaProbe};
use support::{raw, report, sys};
use zk_client::{Client, CreateMode, acl};
use zk_testkit::{Ensemble, ProxyMode, SaslServer, TlsOptions};

/// The fault proxies' thread (`comm` is cut to 15 bytes: "zk-testkit-prox").
const PROXY_THREAD: &str = "zk-testkit-pro";
const T6: Duration = Duration::from_secs(6);
const T30: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    CrashFollower,
    CrashLeader,
    Freeze,
    TwoOfThree,
}

struct Scenario {
    name: &'static str,
    fault: Fault,
    timeout: Duration,
    detector: Detector,
    clients: &'static [Who],
    samples: usize,
    /// Also run in smoke mode (one sample, this project's client, plus the listed peers).
    smoke_peers: bool,
    /// Over mutual TLS (`secureClientPort`), on the TLS ensemble.
    tls: TlsMode,
}

/// Whether a scenario runs over TLS, and how this project's client prepares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// Plain TCP.
    Off,
    /// Mutual TLS; zk-failover primes its TLS session caches with every server right after
    /// connecting (`TlsConnector::prime`), so a failover resumes.
    Primed,
    /// Mutual TLS; no priming: a failover to a server not met before pays a full handshake.
    Cold,
}

const ALL: &[Who] = &[Who::Ours, Who::Zkc, Who::Java];
const PEERS: &[Who] = &[Who::Zkc, Who::Java];
const OURS: &[Who] = &[Who::Ours];
/// Over TLS: `zookeeper-client` is not built with its `tls` feature (it brings aws-lc-rs, an
/// OpenSSL-licensed C library this workspace's `deny.toml` refuses).
const TLS_CLIENTS: &[Who] = &[Who::Ours, Who::Java];

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "crash_follower",
        fault: Fault::CrashFollower,
        timeout: T6,
        detector: Detector::Default,
        clients: ALL,
        samples: 8,
        smoke_peers: true,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "crash_leader",
        fault: Fault::CrashLeader,
        timeout: T6,
        detector: Detector::Default,
        clients: ALL,
        samples: 6,
        smoke_peers: false,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "freeze",
        fault: Fault::Freeze,
        timeout: T6,
        detector: Detector::Default,
        clients: ALL,
        samples: 5,
        smoke_peers: false,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "freeze_adaptive_6s",
        fault: Fault::Freeze,
        timeout: T6,
        detector: Detector::Adaptive,
        clients: OURS,
        samples: 5,
        smoke_peers: false,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "freeze_adaptive_30s",
        fault: Fault::Freeze,
        timeout: T30,
        detector: Detector::Adaptive,
        clients: OURS,
        samples: 5,
        smoke_peers: false,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "freeze_30s",
        fault: Fault::Freeze,
        timeout: T30,
        detector: Detector::Default,
        clients: PEERS,
        samples: 2,
        smoke_peers: false,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "freeze_two_of_three",
        fault: Fault::TwoOfThree,
        timeout: T6,
        detector: Detector::Default,
        clients: ALL,
        samples: 5,
        smoke_peers: false,
        tls: TlsMode::Off,
    },
    Scenario {
        name: "tls_crash_follower",
        fault: Fault::CrashFollower,
        timeout: T6,
        detector: Detector::Default,
        clients: TLS_CLIENTS,
        samples: 8,
        smoke_peers: true,
        tls: TlsMode::Primed,
    },
    Scenario {
        name: "tls_crash_leader",
        fault: Fault::CrashLeader,
        timeout: T6,
        detector: Detector::Default,
        clients: TLS_CLIENTS,
        samples: 6,
        smoke_peers: false,
        tls: TlsMode::Primed,
    },
    Scenario {
        name: "tls_freeze",
        fault: Fault::Freeze,
        timeout: T6,
        detector: Detector::Default,
        clients: TLS_CLIENTS,
        samples: 5,
        smoke_peers: false,
        tls: TlsMode::Primed,
    },
    Scenario {
        name: "tls_cold_crash_follower",
        fault: Fault::CrashFollower,
        timeout: T6,
        detector: Detector::Default,
        clients: OURS,
        samples: 6,
        smoke_peers: false,
        tls: TlsMode::Cold,
    },
];

/// SASL beside plain: kill −9 of the session's follower, on an ensemble whose servers take
/// DIGEST-MD5 (plain and DIGEST-MD5 sessions) and on one whose servers take Kerberos (a
/// throwaway KDC of the test kit). The Java client runs with the same JAAS set-up.
const SASL_PLAIN: Scenario = Scenario {
    name: "sasl_plain",
    fault: Fault::CrashFollower,
    timeout: T6,
    detector: Detector::Default,
    clients: SASL_CLIENTS,
    samples: 12,
    smoke_peers: false,
    tls: TlsMode::Off,
};
const SASL_DIGEST: Scenario = Scenario {
    name: "sasl_digest",
    ..SASL_PLAIN
};
const SASL_KERBEROS: Scenario = Scenario {
    name: "sasl_kerberos",
    ..SASL_PLAIN
};
const SASL_CLIENTS: &[Who] = &[Who::Ours, Who::Java];

struct Ctx {
    args: Args,
    ens: Ensemble,
    java_cp: Option<String>,
    java: Option<JavaProbe>,
    /// How sessions authenticate, and the Java probe's JVM flags for it (its JAAS file).
    auth: Auth,
    java_flags: Vec<String>,
    /// The SASL set-ups whose server code every (re)started node runs through first.
    sasl_warm: Vec<Auth>,
    /// The TLS phase's client configuration (this project's client).
    tls: Option<clients::OursTls>,
    results: Results,
    failures: Vec<String>,
}

/// Every benchmark name, and whether it runs over TLS (on the TLS ensemble).
fn names() -> Vec<(String, bool)> {
    let mut v = vec![
        ("failover/floor".to_owned(), false),
        ("failover/floor_after_crash".to_owned(), false),
        ("failover/tls_floor".to_owned(), true),
    ];
    for s in SCENARIOS {
        for w in s.clients {
            v.push((
                format!("failover/{}/{}", s.name, w.key()),
                s.tls != TlsMode::Off,
            ));
        }
    }
    for s in [SASL_PLAIN, SASL_DIGEST, SASL_KERBEROS] {
        for w in s.clients {
            v.push((format!("failover/{}/{}", s.name, w.key()), false));
        }
    }
    v.push(("failover/rolling_replacement".to_owned(), false));
    for w in ALL {
        v.push((format!("failover/storm/{}", w.key()), false));
    }
    v
}

fn main() {
    let args = Args::parse();
    // `ZK_BENCH_LOG=zk_session=debug` (an `EnvFilter`): the engines' logs on stderr, with
    // microsecond timestamps, to see where a pause goes.
    if let Ok(filter) = std::env::var("ZK_BENCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    if args.mode == Mode::List {
        for (name, _) in names() {
            if name != "failover/rolling_replacement" {
                println!("{name}: benchmark");
            }
        }
        return;
    }
    support::harness::run_to_completion("failover", run(args));
}

/// Starts the 3-node ensemble (plain with fault proxies, or with a `secureClientPort` on every
/// node, mutual TLS required) and creates `/probe`.
async fn start_ensemble(tls: bool) -> Ensemble {
    let builder = support::ensemble::builder();
    let builder = if tls {
        builder.tls(TlsOptions::default())
    } else {
        builder.proxies(true)
    };
    let ens = builder.start().await.expect("start the 3-node ensemble");
    let setup = Client::builder(&ens.direct_connect_string())
        .session_timeout(T6)
        .connect()
        .await
        .expect("set-up client");
    ensure_probe(&setup).await.expect("create /probe");
    setup.close().await;
    ens
}

/// Warms every server of a fresh ensemble (its JVMs are as cold as a restarted node's).
async fn warm_all(ctx: &mut Ctx) {
    for i in 0..ctx.ens.nodes().len() {
        if let Err(e) = warm(ctx, i).await {
            ctx.failures.push(format!("warm-up of node {i}: {e}"));
        }
    }
}

/// Switches `ctx` to the TLS ensemble: this project's client gets the test CA, a client
/// certificate and the servers to prime; the Java probe restarts with the Netty socket and
/// PEM stores.
fn use_tls(ctx: &mut Ctx) -> Result<(), String> {
    let m = ctx.ens.tls().ok_or("no TLS material")?;
    let config = zk_client::TlsConfig::builder()
        .ca_pem(&m.ca_pem)
        .and_then(|b| b.client_cert_pem(&m.client_cert_pem, &m.client_key_pem))
        .and_then(zk_transport::TlsConfigBuilder::build)
        .map_err(|e| e.to_string())?;
    let prime = ctx
        .ens
        .nodes()
        .iter()
        .filter_map(zk_testkit::Node::secure_addr)
        .map(zk_transport::Target::from_addr)
        .collect();
    ctx.tls = Some(clients::OursTls { config, prime });
    let keystore = m.dir.join("java-client.pem");
    std::fs::write(
        &keystore,
        format!("{}{}", m.client_key_pem, m.client_cert_pem),
    )
    .map_err(|e| e.to_string())?;
    ctx.java_flags = java::tls_flags(&keystore, &m.ca_path());
    ctx.java_cp = ctx.java_cp.as_deref().map(java::tls_classpath);
    drop(ctx.java.take());
    Ok(())
}

async fn run(args: Args) -> Vec<String> {
    let all = names();
    let plain = all.iter().any(|(n, tls)| !tls && args.selected(n));
    let tls = all.iter().any(|(n, tls)| *tls && args.selected(n));
    let ens = start_ensemble(!plain).await;
    let java_cp = match java::prepare() {
        Ok(cp) => Some(cp),
        Err(e) => {
            eprintln!("failover: Java client skipped: {e}");
            None
        }
    };
    let mut ctx = Ctx {
        args,
        ens,
        java_cp,
        java: None,
        auth: Auth::Plain,
        java_flags: Vec::new(),
        sasl_warm: Vec::new(),
        tls: None,
        results: Results::default(),
        failures: Vec::new(),
    };
    let name = if ctx.args.mode == Mode::Bench {
        "failover"
    } else {
        "failover-smoke"
    };
    if plain {
        plain_phase(&mut ctx).await;
        finish(&mut ctx, name);
    }
    if tls {
        if plain {
            drop(ctx.java.take());
            ctx.ens = start_ensemble(true).await;
        }
        if let Err(e) = use_tls(&mut ctx) {
            ctx.failures.push(format!("TLS set-up: {e}"));
            return ctx.failures;
        }
        warm_all(&mut ctx).await;
        ctx.results
            .add("machine", "-", "load_start", vec![sys::load1()]);
        if ctx.args.selected("failover/tls_floor") {
            tls_floor(&mut ctx).await;
        }
        scenarios(&mut ctx, true).await;
        finish(&mut ctx, &format!("{name}-tls"));
    }
    drop(ctx.java.take());
    ctx.failures
}

/// The plain-TCP benchmarks.
async fn plain_phase(ctx: &mut Ctx) {
    warm_all(ctx).await;
    ctx.results
        .add("machine", "-", "load_start", vec![sys::load1()]);
    if ctx.args.selected("failover/floor") {
        floor(ctx).await;
    }
    if ctx.args.selected("failover/floor_after_crash") {
        floor_after_crash(ctx).await;
    }
    scenarios(ctx, false).await;
    if let Err(e) = sasl(ctx).await {
        ctx.failures.push(format!("sasl: {e}"));
    }
    if ctx.args.selected("failover/rolling_replacement")
        && let Err(e) = rolling_replacement(ctx).await
    {
        ctx.failures.push(format!("rolling_replacement: {e}"));
    }
    for who in ALL {
        if *who == Who::Java && ctx.java_cp.is_none() {
            continue;
        }
        if ctx.args.mode == Mode::Test && *who != Who::Ours {
            continue;
        }
        if ctx.args.selected(&format!("failover/storm/{}", who.key())) {
            let n = ctx.args.samples(3);
            for _ in 0..n {
                storm(ctx, *who).await;
            }
        }
    }
}

/// The scenarios of one phase (plain or TLS), the clients interleaved sample by sample.
async fn scenarios(ctx: &mut Ctx, tls: bool) {
    for s in SCENARIOS.iter().filter(|s| (s.tls != TlsMode::Off) == tls) {
        let smoke = ctx.args.mode == Mode::Test;
        let mut remaining: Vec<(Who, usize)> = s
            .clients
            .iter()
            .filter(|w| !smoke || **w == Who::Ours || s.smoke_peers)
            .filter(|w| **w != Who::Java || ctx.java_cp.is_some())
            .filter(|w| {
                ctx.args
                    .selected(&format!("failover/{}/{}", s.name, w.key()))
            })
            .map(|w| (*w, ctx.args.samples(s.samples)))
            .collect();
        // Interleave the clients sample by sample (load drifts on a shared machine).
        while remaining.iter().any(|(_, n)| *n > 0) {
            for (who, n) in &mut remaining {
                if *n == 0 {
                    continue;
                }
                *n -= 1;
                sample(ctx, s, *who).await;
            }
        }
    }
}

/// Writes a phase's results (`name`: `failover` or `failover-tls`, `-smoke` in test mode;
/// merged into the previous file when names were filtered) and, with `ZK_BENCH_DOCS`, the
/// report; then starts a fresh result set.
fn finish(ctx: &mut Ctx, name: &str) {
    ctx.results
        .add("machine", "-", "load_end", vec![sys::load1()]);
    let mut results = std::mem::take(&mut ctx.results);
    if !ctx.args.filters.is_empty() {
        results = Results::read(name).merged_with(results);
    }
    match results.write(name) {
        Ok(p) => println!("failover: results in {}", p.display()),
        Err(e) => eprintln!("failover: cannot write results: {e}"),
    }
    if ctx.args.mode == Mode::Bench && std::env::var_os("ZK_BENCH_DOCS").is_some() {
        if name.ends_with("-tls") {
            report::render_tls();
        } else {
            report::render();
            report::render_sasl();
        }
    }
}

/// The samples of `scenarios` on `ens` (interleaved client by client), with `auth` for this
/// project's client and `java_flags` for the Java probe; the context's own ensemble and
/// settings are restored afterwards.
async fn on_ensemble(
    ctx: &mut Ctx,
    ens: Ensemble,
    runs: &[(Scenario, Auth)],
    java_flags: Vec<String>,
) {
    let main = std::mem::replace(&mut ctx.ens, ens);
    let flags = std::mem::replace(&mut ctx.java_flags, java_flags);
    drop(ctx.java.take());
    ctx.sasl_warm = runs.iter().map(|r| r.1.clone()).collect();
    for i in 0..ctx.ens.nodes().len() {
        if let Err(e) = warm(ctx, i).await {
            ctx.failures.push(format!("warm-up of node {i}: {e}"));
        }
    }
    let smoke = ctx.args.mode == Mode::Test;
    let mut remaining: Vec<(usize, Who, usize)> = Vec::new();
    for (k, (s, _)) in runs.iter().enumerate() {
        for w in s.clients {
            if (smoke && *w != Who::Ours)
                || (*w == Who::Java && ctx.java_cp.is_none())
                || !ctx
                    .args
                    .selected(&format!("failover/{}/{}", s.name, w.key()))
            {
                continue;
            }
            remaining.push((k, *w, ctx.args.samples(s.samples)));
        }
    }
    while remaining.iter().any(|r| r.2 > 0) {
        for (k, who, n) in &mut remaining {
            if *n == 0 {
                continue;
            }
            *n -= 1;
            let (s, auth) = &runs[*k];
            if ctx.auth != *auth {
                ctx.auth = auth.clone();
            }
            sample(ctx, s, *who).await;
        }
    }
    ctx.auth = Auth::Plain;
    ctx.sasl_warm.clear();
    drop(ctx.java.take());
    ctx.java_flags = flags;
    let sasl_ens = std::mem::replace(&mut ctx.ens, main);
    if let Err(e) = sasl_ens.shutdown() {
        ctx.failures.push(format!("sasl ensemble shutdown: {e}"));
    }
}

/// The SASL scenarios (see [`SASL_PLAIN`]).
async fn sasl(ctx: &mut Ctx) -> Result<(), String> {
    let any = |s: &Scenario, ctx: &Ctx| {
        s.clients.iter().any(|w| {
            ctx.args
                .selected(&format!("failover/{}/{}", s.name, w.key()))
        })
    };
    let e = |e: zk_testkit::TestkitError| e.to_string();
    let dir = tempfile_dir()?;
    if any(&SASL_PLAIN, ctx) || any(&SASL_DIGEST, ctx) {
        let ens = support::ensemble::builder()
            .sasl(SaslServer::digest(&[("bench", "bench-secret")]))
            .start()
            .await
            .map_err(e)?;
        prepare_sasl_ensemble(&ens).await?;
        round_trip(ctx, &ens).await?;
        let jaas = dir.join("digest.jaas");
        std::fs::write(
            &jaas,
            "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             username=\"bench\"\n  password=\"bench-secret\";\n};\n",
        )
        .map_err(|e| e.to_string())?;
        let digest = Auth::Digest("bench".into(), "bench-secret".into());
        on_ensemble(
            ctx,
            ens,
            &[(SASL_PLAIN, Auth::Plain), (SASL_DIGEST, digest)],
            vec![format!(
                "-Djava.security.auth.login.config={}",
                jaas.display()
            )],
        )
        .await;
    }
    #[cfg(feature = "gssapi")]
    if any(&SASL_KERBEROS, ctx) {
        if !zk_testkit::kdc_available() {
            return Err("no KDC (install krb5-kdc and krb5-admin-server)".into());
        }
        let kdc = zk_testkit::Kdc::start().map_err(e)?;
        let env = kdc.client_env().map_err(e)?;
        #[allow(
            unsafe_code,
            reason = "set before anything in this process calls into krb5"
        )]
        // SAFETY: the benchmark's first Kerberos use comes after this; no other thread calls
        // into krb5 yet, and std's own environment access is locked.
        unsafe {
            for (k, v) in env {
                std::env::set_var(k, v);
            }
        }
        let ens = support::ensemble::builder()
            .sasl(SaslServer::kerberos(&kdc))
            .start()
            .await
            .map_err(e)?;
        prepare_sasl_ensemble(&ens).await?;
        let jaas = dir.join("kerberos.jaas");
        std::fs::write(
            &jaas,
            format!(
                "Client {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
                 useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
                 principal=\"{}\";\n}};\n",
                kdc.client_keytab().display(),
                zk_testkit::Kdc::CLIENT
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut flags = vec![
            format!("-Djava.security.auth.login.config={}", jaas.display()),
            format!("-Djava.security.krb5.conf={}", kdc.krb5_conf().display()),
        ];
        let principal = kdc.server_principal();
        flags.push(format!("-Dzookeeper.server.principal={principal}"));
        on_ensemble(
            ctx,
            ens,
            &[(SASL_KERBEROS, Auth::Kerberos(principal))],
            flags,
        )
        .await;
        drop(kdc);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One loopback round trip on `ens` (sequential `getData`s of a plain session, median of
/// 200): the unit of the SASL target.
async fn round_trip(ctx: &mut Ctx, ens: &Ensemble) -> Result<(), String> {
    let c = Client::builder(&ens.node(0).client_addr().to_string())
        .session_timeout(T6)
        .connect()
        .await
        .map_err(|e| format!("round-trip client: {e}"))?;
    let mut rtts = Vec::new();
    for _ in 0..220 {
        let t = Instant::now();
        c.get_data("/probe").await.map_err(|e| e.to_string())?;
        rtts.push(ms(t.elapsed()));
    }
    c.close().await;
    rtts.drain(..20);
    ctx.results
        .add("sasl_rtt", Who::Ours.key(), "rtt_ms", vec![median(&rtts)]);
    Ok(())
}

/// A scratch directory for the Java client's JAAS files.
fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("zk-bench-sasl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// `/probe` on a SASL ensemble (created by a plain session: the servers do not enforce SASL).
async fn prepare_sasl_ensemble(ens: &Ensemble) -> Result<(), String> {
    let setup = Client::builder(&ens.direct_connect_string())
        .session_timeout(T6)
        .connect()
        .await
        .map_err(|e| format!("set-up client: {e}"))?;
    ensure_probe(&setup).await?;
    setup.close().await;
    Ok(())
}

/// `rolling_replacement`: an ensemble with dynamic membership (servers 1–3, spares 4–6);
/// one session of each client on the string of 1–3, reading in a loop; then 4, 5, 6 are
/// added (`reconfig`) and 1, 2, 3 removed and stopped one by one. Per step and client: the
/// longest time without a successful read (NaN: not reading any more), and at the end whether
/// the session was kept. zk-failover follows the configuration; the peers keep their static
/// lists (the Java client would need the application to call `updateServerList`).
async fn rolling_replacement(ctx: &mut Ctx) -> Result<(), String> {
    let e = |e: zk_testkit::TestkitError| e.to_string();
    let ens = Ensemble::builder()
        .nodes(3)
        .dynamic(3)
        .start()
        .await
        .map_err(e)?;
    let cs: String = (0..3)
        .map(|i| ens.node(i).client_addr().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let admin = Client::builder(&cs)
        .session_timeout(T6)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    ensure_probe(&admin).await?;
    let smoke = ctx.args.mode == Mode::Test;
    let mut subjects = Vec::new();
    for who in ALL {
        if (*who == Who::Java && ctx.java_cp.is_none()) || (smoke && *who != Who::Ours) {
            continue;
        }
        let java = if *who == Who::Java {
            Some(match ctx.java.take() {
                Some(p) => p,
                None => JavaProbe::spawn(ctx.java_cp.as_deref().ok_or("no java")?)?,
            })
        } else {
            None
        };
        let mut subj = clients::connect(*who, &cs, T6, Detector::Default, java).await?;
        subj.start_loop()?;
        subjects.push(subj);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reconfig = |joining: Option<String>, leaving: Option<String>| {
        let admin = admin.clone();
        async move {
            for _ in 0..100 {
                let change = zk_client::Reconfig::Incremental {
                    joining: joining.clone(),
                    leaving: leaving.clone(),
                };
                match admin.reconfig(change, None).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_retryable() || e == zk_client::Error::ReconfigInProgress => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => return Err(format!("reconfig: {e}")),
                }
            }
            Err("reconfig kept failing".to_owned())
        }
    };
    let steps = ["add 4-6", "remove 1", "remove 2", "remove 3"];
    for (n, what) in steps.iter().enumerate() {
        step(&format!("rolling replacement: {what}"));
        for s in &mut subjects {
            s.mark()?;
        }
        if n == 0 {
            for i in 3..6 {
                ens.start_spare(i).await.map_err(e)?;
                reconfig(Some(ens.server_line(i)), None).await?;
            }
        } else {
            let i = n - 1;
            reconfig(None, Some(ens.node(i).id().to_string())).await?;
            // zk-failover moves off within a second of the new configuration; then the
            // server stops, as an operator would stop it.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            tokio::task::block_in_place(|| ens.retire(i)).map_err(e)?;
        }
        tokio::time::sleep(Duration::from_secs(if smoke { 3 } else { 6 })).await;
        for s in &mut subjects {
            let (pause, kept) = s.since_mark(Duration::from_secs(3))?;
            let v = pause.map_or(f64::NAN, ms);
            println!(
                "failover/rolling_replacement/{}: {what}: pause {v:.1} ms, session kept {kept}",
                s.who.key()
            );
            ctx.results.add(
                "rolling_replacement",
                s.who.key(),
                &format!("step{n}_pause_ms"),
                vec![v],
            );
            if n + 1 == steps.len() {
                ctx.results.add(
                    "rolling_replacement",
                    s.who.key(),
                    "kept",
                    vec![if kept { 1.0 } else { 0.0 }],
                );
            }
        }
    }
    for s in subjects {
        if let Some(p) = s.close().await {
            ctx.java = Some(p);
        }
    }
    admin.close().await;
    Ok(())
}

/// Creates `/probe`, the node every read loop reads, unless it exists.
async fn ensure_probe(c: &Client) -> Result<(), String> {
    let open = acl::open_unsafe();
    match c
        .create("/probe", "probe", &open, CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(zk_client::Error::NodeExists) => Ok(()),
        Err(e) => Err(format!("create /probe: {e}")),
    }
}

/// Progress lines on stderr with `ZK_BENCH_VERBOSE=1`.
fn step(what: &str) {
    if std::env::var_os("ZK_BENCH_VERBOSE").is_some() {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let t0 = START.get_or_init(Instant::now);
        eprintln!("[{:8.3}] {what}", t0.elapsed().as_secs_f64());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The floor: TCP connect + ConnectRequest/ConnectResponse for an existing session, on every
/// server in turn.
async fn floor(ctx: &mut Ctx) {
    let addrs: Vec<SocketAddr> = ctx.ens.nodes().iter().map(|n| n.client_addr()).collect();
    let session = match raw::new_session(addrs[0], 60_000).await {
        Ok(s) => s,
        Err(e) => {
            ctx.failures.push(format!("floor: new session: {e}"));
            return;
        }
    };
    let (warm, n) = if ctx.args.mode == Mode::Bench {
        (6, ctx.args.samples(50).max(10))
    } else {
        (1, 3)
    };
    let mut v = Vec::new();
    for i in 0..warm + n {
        // Move the session to another server each time, like a failover.
        let addr = addrs[(i + 1) % addrs.len()];
        match raw::reconnect_time(addr, &session, 60_000).await {
            Ok(d) if i >= warm => v.push(ms(d)),
            Ok(_) => {}
            Err(e) => {
                ctx.failures.push(format!("floor: handshake: {e}"));
                return;
            }
        }
    }
    println!(
        "failover/floor: reconnect handshake p50 {:.2} ms max {:.2} ms (n={})",
        median(&v),
        support::harness::max(&v),
        v.len()
    );
    ctx.results.add("floor", "raw", "handshake_ms", v);
}

/// The TLS floor: TCP connect + TLS handshake + ConnectRequest/ConnectResponse for an existing
/// session, moved to another server each time (like `floor`), over mutual TLS; full
/// handshakes (resumption off) and resumed ones (TLS sessions primed with every server)
/// interleaved. `tls_ms` is the TLS connection alone, `handshake_ms` the whole reconnect.
async fn tls_floor(ctx: &mut Ctx) {
    let Some(t) = ctx.tls.clone() else {
        return;
    };
    let addrs: Vec<SocketAddr> = ctx
        .ens
        .nodes()
        .iter()
        .filter_map(zk_testkit::Node::secure_addr)
        .collect();
    let session = match raw::new_session(ctx.ens.node(0).client_addr(), 60_000).await {
        Ok(s) => s,
        Err(e) => {
            ctx.failures.push(format!("tls_floor: new session: {e}"));
            return;
        }
    };
    let (full, resumed) = match full_and_resumed(&t) {
        Ok(c) => c,
        Err(e) => {
            ctx.failures.push(format!("tls_floor: {e}"));
            return;
        }
    };
    resumed.prime(&t.prime, Duration::from_secs(5)).await;
    let (warm, n) = if ctx.args.mode == Mode::Bench {
        (6, ctx.args.samples(50).max(10))
    } else {
        (1, 3)
    };
    let mut v: [(Vec<f64>, Vec<f64>, usize); 2] = Default::default();
    for i in 0..warm + n {
        let addr = addrs[(i + 1) % addrs.len()];
        for (k, connector) in [&full, &resumed].into_iter().enumerate() {
            match raw::tls_reconnect_time(connector, addr, &session, 60_000).await {
                Ok((tls, total, was_resumed)) if i >= warm => {
                    v[k].0.push(ms(total));
                    v[k].1.push(ms(tls));
                    v[k].2 += usize::from(was_resumed);
                }
                Ok(_) => {}
                Err(e) => {
                    ctx.failures.push(format!("tls_floor: handshake: {e}"));
                    return;
                }
            }
        }
    }
    for (k, client) in ["raw-full", "raw-resumed"].into_iter().enumerate() {
        let (total, tls, resumed) = std::mem::take(&mut v[k]);
        println!(
            "failover/tls_floor/{client}: reconnect p50 {:.2} ms (TLS alone {:.2} ms), max {:.2} ms, resumed {resumed}/{} ",
            median(&total),
            median(&tls),
            support::harness::max(&total),
            total.len()
        );
        if k == 1 && resumed < total.len() {
            ctx.failures
                .push(format!("tls_floor: only {resumed}/{} resumed", total.len()));
        }
        let r = &mut ctx.results;
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        r.add("tls_floor", client, "resumed", vec![resumed as f64]);
        r.add("tls_floor", client, "handshake_ms", total);
        r.add("tls_floor", client, "tls_ms", tls);
    }
}

/// The floor under the crash scenario's conditions: the bare protocol (a raw session on a
/// follower, no client library) failing over once. Kill −9 of that follower; from the moment
/// its socket reports EOF, a handshake on a survivor and one `getData` — the least any
/// client's share of `crash_follower` can be right after a crash. Survivors alternate
/// between the leader (which revalidates the session itself) and the other follower (which
/// asks the leader), two samples each way in turn.
async fn floor_after_crash(ctx: &mut Ctx) {
    let n = if ctx.args.mode == Mode::Bench {
        ctx.args.samples(8)
    } else {
        1
    };
    for k in 0..n {
        match one_floor_after_crash(ctx, k).await {
            Ok((to_leader, eof, back, read)) => {
                let (hs, share) = (ms(back - eof), ms(read - eof));
                let kind = if to_leader { "leader" } else { "follower" };
                println!(
                    "failover/floor_after_crash: handshake on the {kind} {hs:.2} ms, +read {share:.2} ms"
                );
                let r = &mut ctx.results;
                r.add("floor_after_crash", "raw", "handshake_ms", vec![hs]);
                r.add("floor_after_crash", "raw", "share_ms", vec![share]);
                r.add(
                    "floor_after_crash",
                    "raw",
                    &format!("share_{kind}_ms"),
                    vec![share],
                );
            }
            Err(e) => ctx.failures.push(format!("floor_after_crash: {e}")),
        }
        if let Err(e) = heal(ctx).await {
            ctx.failures.push(format!("floor_after_crash: heal: {e}"));
        }
    }
}

async fn one_floor_after_crash(
    ctx: &mut Ctx,
    k: usize,
) -> Result<(bool, Instant, Instant, Instant), String> {
    let leader = ctx
        .ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let victim = followers[k % 2];
    let to_leader = (k / 2).is_multiple_of(2);
    let next = if to_leader {
        leader
    } else {
        followers[(k + 1) % 2]
    };
    let timeout_ms = i32::try_from(T6.as_millis()).unwrap_or(i32::MAX);
    let (resp, stream) =
        raw::handshake(ctx.ens.node(victim).client_addr(), None, timeout_ms).await?;
    let session = raw::RawSession {
        id: resp.session_id,
        passwd: resp.passwd,
    };
    // As settled as a client's connection after its warm-up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let next_addr = ctx.ens.node(next).client_addr();
    let task =
        tokio::spawn(
            async move { raw::fail_over_once(stream, &session, next_addr, timeout_ms).await },
        );
    let ens_node = ctx.ens.node(victim);
    tokio::task::block_in_place(|| ens_node.kill()).map_err(|e| e.to_string())?;
    let (eof, back, read) = task.await.map_err(|e| e.to_string())??;
    Ok((to_leader, eof, back, read))
}

/// One sample of one client in one scenario.
async fn sample(ctx: &mut Ctx, s: &Scenario, who: Who) {
    let id = format!("failover/{}/{}", s.name, who.key());
    match try_sample(ctx, s, who).await {
        Ok((o, election)) => {
            let share = o.detect.map(|d| o.pause.saturating_sub(d));
            let extra = election.map_or(String::new(), |e| {
                format!(
                    ", election {:.1} ms, beyond it {:.1} ms",
                    ms(e),
                    ms(o.pause) - ms(e)
                )
            });
            let attempts = o.attempts.map_or(String::new(), |(a, f)| {
                format!(", attempts {a} ({f} failed)")
            });
            let attempts = match o.tls {
                Some((full, resumed)) => {
                    format!("{attempts}, TLS handshakes {full} full / {resumed} resumed")
                }
                None => attempts,
            };
            println!(
                "{id}: pause {:.1} ms, detect {}, share {}{extra}, kept {}{attempts}",
                ms(o.pause),
                o.detect.map_or("-".into(), |d| format!("{:.1} ms", ms(d))),
                share.map_or("-".into(), |d| format!("{:.1} ms", ms(d))),
                o.kept
            );
            let r = &mut ctx.results;
            r.add(s.name, who.key(), "pause_ms", vec![ms(o.pause)]);
            if let Some(d) = o.detect {
                r.add(s.name, who.key(), "detect_ms", vec![ms(d)]);
            }
            if let Some(sh) = share {
                r.add(s.name, who.key(), "share_ms", vec![ms(sh)]);
            }
            if let Some(e) = election {
                r.add(s.name, who.key(), "election_ms", vec![ms(e)]);
                r.add(
                    s.name,
                    who.key(),
                    "beyond_election_ms",
                    vec![ms(o.pause) - ms(e)],
                );
            }
            r.add(s.name, who.key(), "timeout_ms", vec![ms(s.timeout)]);
            if let Some((full, resumed)) = o.tls {
                #[allow(clippy::cast_precision_loss, reason = "small counts")]
                {
                    r.add(s.name, who.key(), "tls_full", vec![full as f64]);
                    r.add(s.name, who.key(), "tls_resumed", vec![resumed as f64]);
                }
            }
            r.add(
                s.name,
                who.key(),
                "kept",
                vec![if o.kept { 1.0 } else { 0.0 }],
            );
            // The smoke assertion: the session survived and reads resumed (no timing).
            if !o.kept && (who == Who::Ours || ctx.args.mode == Mode::Test) {
                ctx.failures.push(format!("{id}: session not kept"));
            }
        }
        Err(e) => {
            println!("{id}: FAILED: {e}");
            ctx.results.add(s.name, who.key(), "errors", vec![1.0]);
            if who == Who::Ours || ctx.args.mode == Mode::Test {
                ctx.failures.push(format!("{id}: {e}"));
            }
        }
    }
    if let Err(e) = heal(ctx).await {
        ctx.failures.push(format!("{id}: heal: {e}"));
    }
}

/// Opens a session of `who` on a suitable node (a follower, the leader, or any).
async fn position(
    ctx: &mut Ctx,
    s: &Scenario,
    who: Who,
    connstr: &str,
) -> Result<(Subject, usize), String> {
    let leader = ctx
        .ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..20 {
        let java = if who == Who::Java {
            match ctx.java.take() {
                Some(p) => Some(p),
                None => Some(JavaProbe::spawn_with(
                    ctx.java_cp.as_deref().ok_or("no java")?,
                    &ctx.java_flags,
                )?),
            }
        } else {
            None
        };
        let tls = match (s.tls, &ctx.tls) {
            (TlsMode::Off, _) => None,
            (TlsMode::Primed, Some(t)) => Some(t.clone()),
            (TlsMode::Cold, Some(t)) => Some(clients::OursTls {
                prime: Vec::new(),
                ..t.clone()
            }),
            (_, None) => return Err("no TLS configuration".into()),
        };
        let mut subj = clients::connect_with(
            who,
            connstr,
            s.timeout,
            s.detector,
            java,
            tls.as_ref(),
            &ctx.auth,
        )
        .await?;
        let node = subj.node(&ctx.ens).await;
        let fits = match (s.fault, node) {
            (_, None) => false,
            (Fault::CrashLeader, Some(n)) => n == leader,
            (Fault::CrashFollower | Fault::Freeze, Some(n)) => n != leader,
            (Fault::TwoOfThree, Some(_)) => true,
        };
        if fits && let Some(n) = node {
            return Ok((subj, n));
        }
        if let Some(p) = subj.close().await {
            ctx.java = Some(p);
        }
    }
    Err("could not place a session on a suitable node".into())
}

async fn try_sample(
    ctx: &mut Ctx,
    s: &Scenario,
    who: Who,
) -> Result<(Outcome, Option<Duration>), String> {
    let connstr = if s.tls != TlsMode::Off {
        ctx.ens
            .direct_tls_connect_string()
            .ok_or("no secureClientPort")?
    } else if s.fault == Fault::TwoOfThree {
        ctx.ens.connect_string()
    } else {
        ctx.ens.direct_connect_string()
    };
    step(&format!("{} {}: placing a session", s.name, who.key()));
    let (mut subj, node) = position(ctx, s, who, &connstr).await?;
    step(&format!("on node {node}; reading"));
    subj.start_loop()?;
    // Warm up (and let the adaptive detector learn the connection's response times).
    let warm = if s.detector == Detector::Adaptive {
        1500
    } else {
        400
    };
    tokio::time::sleep(Duration::from_millis(warm)).await;

    let survivors: Vec<SocketAddr> = (0..3)
        .filter(|i| *i != node)
        .map(|i| ctx.ens.node(i).client_addr())
        .collect();
    let witness = if s.fault == Fault::CrashLeader {
        Some(raw::new_session(survivors[0], 60_000).await?)
    } else {
        None
    };

    let k = subj.mark()?;
    step("fault");
    match s.fault {
        Fault::CrashFollower | Fault::CrashLeader => {
            let ens_node = ctx.ens.node(node);
            // `kill` reaps the JVM (blocking ~20 ms): off the runtime's workers.
            tokio::task::block_in_place(|| ens_node.kill()).map_err(|e| e.to_string())?;
        }
        Fault::Freeze => {
            let ens_node = ctx.ens.node(node);
            tokio::task::block_in_place(|| ens_node.try_freeze()).map_err(|e| e.to_string())?;
        }
        Fault::TwoOfThree => {
            ctx.ens
                .proxy(node)
                .ok_or("no proxy")?
                .set_mode(ProxyMode::Blackhole);
            ctx.ens
                .proxy((node + 1) % 3)
                .ok_or("no proxy")?
                .set_mode(ProxyMode::Blackhole);
        }
    }
    // When did the ensemble serve again (a survivor re-established an existing session)?
    let election = if let Some(w) = witness {
        let w = Arc::new(w);
        let mut tasks = Vec::new();
        for addr in survivors {
            let w = Arc::clone(&w);
            tasks.push(tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if tokio::time::timeout(
                        Duration::from_millis(100),
                        raw::handshake(addr, Some(&w), 60_000),
                    )
                    .await
                    .is_ok_and(|r| r.is_ok())
                    {
                        return Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                None
            }));
        }
        let mut first: Option<Instant> = None;
        for t in tasks {
            if let Ok(Some(at)) = t.await {
                first = Some(first.map_or(at, |f| f.min(at)));
            }
        }
        first.map(|f| f.saturating_duration_since(k))
    } else {
        None
    };
    step("waiting for reads to resume");
    let limit = s.timeout * 2 + Duration::from_secs(5);
    let outcome = subj.wait_outcome(k, limit).await;
    let alive = subj.alive();
    if std::env::var_os("ZK_BENCH_VERBOSE").is_some() {
        let on = subj.node(&ctx.ens).await;
        let leader = ctx.ens.wait_for_leader(Duration::from_secs(5)).await.ok();
        step(&format!("resumed on node {on:?} (leader now {leader:?})"));
    }
    step("closing");
    if let Some(p) = subj.close().await {
        ctx.java = Some(p);
    }
    match outcome? {
        Some(o) => Ok((
            Outcome {
                kept: o.kept && alive,
                ..o
            },
            election,
        )),
        None => Err(format!("reads did not resume within {limit:?}")),
    }
}

/// Restores the ensemble: thaw, heal proxies, restart dead nodes, wait until all serve, warm
/// the restarted nodes (`support::ensemble::heal`, shared with the fleet benchmark).
async fn heal(ctx: &mut Ctx) -> Result<(), String> {
    step("healing");
    let restarted = support::ensemble::heal(&ctx.ens, ctx.args.mode == Mode::Bench).await?;
    for i in restarted {
        warm_sasl(ctx, i).await?;
        warm_tls(ctx, i).await?;
    }
    step("healed");
    Ok(())
}

/// Warms node `i` (`support::ensemble::warm`): handshakes moved onto it and away, then reads;
/// in the TLS phase its TLS path too.
async fn warm(ctx: &Ctx, i: usize) -> Result<(), String> {
    step(&format!("warming node {i}"));
    support::ensemble::warm(&ctx.ens, i, ctx.args.mode == Mode::Bench).await?;
    warm_sasl(ctx, i).await?;
    warm_tls(ctx, i).await
}

/// Runs the servers' SASL code on node `i` (class loading, JIT) before it is measured: SASL
/// sessions opened and closed on it, one set-up after the other.
async fn warm_sasl(ctx: &Ctx, i: usize) -> Result<(), String> {
    let n = if ctx.args.mode == Mode::Bench { 60 } else { 3 };
    let addr = ctx.ens.node(i).client_addr().to_string();
    for auth in &ctx.sasl_warm {
        if *auth == Auth::Plain {
            continue;
        }
        for _ in 0..n {
            let subj =
                clients::connect_auth(Who::Ours, &addr, T6, Detector::Default, None, auth).await?;
            subj.close().await;
        }
    }
    Ok(())
}

/// Two connectors with this project's TLS configuration: resumption off, and on.
fn full_and_resumed(
    t: &clients::OursTls,
) -> Result<(zk_transport::TlsConnector, zk_transport::TlsConnector), String> {
    let full = zk_transport::TlsConnector::new(t.config.clone());
    full.reload_handle()
        .rotate(|b| Ok(b.resumption(false)))
        .map_err(|e| e.to_string())?;
    Ok((full, zk_transport::TlsConnector::new(t.config.clone())))
}

/// In the TLS phase, warms node `i`'s TLS path (Netty's SSL handler, the JDK's handshake code)
/// like the plain warm-up warms its handshake: full and resumed TLS reconnects of a session,
/// whichever client is next. Without it the first full handshake on a restarted JVM took
/// 190–250 ms.
async fn warm_tls(ctx: &Ctx, i: usize) -> Result<(), String> {
    let (Some(t), Some(addr)) = (&ctx.tls, ctx.ens.node(i).secure_addr()) else {
        return Ok(());
    };
    let n = if ctx.args.mode == Mode::Bench { 60 } else { 3 };
    let session = raw::new_session(ctx.ens.node(i).client_addr(), 10_000).await?;
    let (full, resumed) = full_and_resumed(t)?;
    for _ in 0..n {
        raw::tls_reconnect_time(&full, addr, &session, 10_000).await?;
        raw::tls_reconnect_time(&resumed, addr, &session, 10_000).await?;
    }
    Ok(())
}

/// `storm`: N sessions in this process, all on one follower (the other proxies refuse new
/// connections while they connect), which is killed. Measures K → every session has read
/// successfully again, the client's CPU over that window (this process minus the fault-proxy
/// thread; the JVM for Java), and sessions lost.
async fn storm(ctx: &mut Ctx, who: Who) {
    let n = if ctx.args.mode == Mode::Bench {
        1000
    } else {
        100
    };
    let id = format!("failover/storm/{}", who.key());
    match try_storm(ctx, who, n).await {
        Ok((all_back, cpu, lost)) => {
            println!(
                "{id}: {n} sessions, all reading again after {:.1} ms, CPU {:.1} ms ({:.0} % of a core), lost {lost}",
                ms(all_back),
                ms(cpu),
                100.0 * cpu.as_secs_f64() / all_back.as_secs_f64().max(1e-9)
            );
            let r = &mut ctx.results;
            r.add("storm", who.key(), "all_back_ms", vec![ms(all_back)]);
            r.add("storm", who.key(), "cpu_ms", vec![ms(cpu)]);
            r.add("storm", who.key(), "lost", vec![lost as f64]);
            r.add("storm", who.key(), "sessions", vec![n as f64]);
            if lost > 0 && (who == Who::Ours || ctx.args.mode == Mode::Test) {
                ctx.failures.push(format!("{id}: {lost} sessions lost"));
            }
        }
        Err(e) => {
            println!("{id}: FAILED: {e}");
            ctx.results.add("storm", who.key(), "errors", vec![1.0]);
            if who == Who::Ours || ctx.args.mode == Mode::Test {
                ctx.failures.push(format!("{id}: {e}"));
            }
        }
    }
    if let Err(e) = heal(ctx).await {
        ctx.failures.push(format!("{id}: heal: {e}"));
    }
}

enum Many {
    Ours(Vec<Client>),
    Zkc(Vec<zookeeper_client::Client>),
    Java(JavaProbe),
}

async fn try_storm(
    ctx: &mut Ctx,
    who: Who,
    n: usize,
) -> Result<(Duration, Duration, usize), String> {
    let leader = ctx
        .ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let target = (leader + 1) % 3;
    for i in 0..3 {
        if i != target {
            ctx.ens
                .proxy(i)
                .ok_or("no proxy")?
                .set_mode(ProxyMode::RefuseNew);
        }
    }
    let connstr = ctx.ens.connect_string();
    let many = connect_many(ctx, who, &connstr, n).await;
    for p in ctx.ens.proxies() {
        p.set_mode(ProxyMode::Pass);
    }
    let many = many?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let java_pid = if let Many::Java(p) = &many {
        Some(p.pid())
    } else {
        None
    };
    let cpu = || match java_pid {
        Some(pid) => sys::threads_cpu(Some(pid), ""),
        None => sys::threads_cpu(None, PROXY_THREAD),
    };
    let proxy_cpu =
        || sys::threads_cpu(None, "").saturating_sub(sys::threads_cpu(None, PROXY_THREAD));
    let target_pid = ctx.ens.node(target).pid();
    let survivors: Vec<u32> = ctx
        .ens
        .nodes()
        .iter()
        .filter_map(|n| n.pid())
        .filter(|p| Some(*p) != target_pid)
        .collect();
    let jvm_cpu = |pids: &[u32]| {
        pids.iter()
            .map(|p| sys::process_cpu(Some(*p)))
            .sum::<Duration>()
    };
    let (m0, p0, j0) = (sys::machine_cpu(), proxy_cpu(), jvm_cpu(&survivors));
    let before: (u64, u64) = match &many {
        Many::Ours(cs) => cs.iter().fold((0, 0), |(a, f), c| {
            let n = c.counters().session;
            (a + n.attempts, f + n.failed_attempts)
        }),
        _ => (0, 0),
    };
    let cpu0 = cpu();
    let k = Instant::now();
    let node = ctx.ens.node(target);
    tokio::task::block_in_place(|| node.kill()).map_err(|e| e.to_string())?;
    step(&format!(
        "storm: kill returned after {:.1} ms",
        ms(k.elapsed())
    ));
    let (all_back, lost, cpu_end) = match many {
        Many::Ours(cs) => {
            let mut tasks = Vec::new();
            for c in &cs {
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    let id = c.session_id();
                    loop {
                        if c.get_data("/probe").await.is_ok() {
                            return (
                                Instant::now(),
                                c.session_id() == id && !c.state().is_terminal(),
                            );
                        }
                        if c.state().is_terminal() {
                            return (Instant::now(), false);
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }));
            }
            let (back, lost) = gather(tasks, k).await;
            let cpu_end = cpu();
            let (mut att, mut failed) = (0, 0);
            let mut detects = Vec::new();
            for c in &cs {
                let n = c.counters().session;
                att += n.attempts;
                failed += n.failed_attempts;
                let at = c.state_stream().borrow().at;
                if let Some(p) = n.last_pause
                    && let Some(d) = at.checked_sub(p)
                {
                    detects.push(ms(d.saturating_duration_since(k)));
                }
            }
            // Failures per host and the kind of each host's last failure, over all sessions.
            let mut per_host: Vec<(u64, std::collections::BTreeMap<String, u64>)> =
                vec![(0, std::collections::BTreeMap::new()); 3];
            for c in &cs {
                for (i, h) in c.host_stats().iter().enumerate().take(3) {
                    per_host[i].0 += h.failures;
                    if let Some(f) = h.last_failure {
                        *per_host[i].1.entry(format!("{f:?}")).or_default() += 1;
                    }
                }
            }
            step(&format!(
                "storm: target {target}; failures per host (cumulative) and last kinds: {per_host:?}"
            ));
            let d = support::harness::sorted(&detects);
            if !d.is_empty() {
                step(&format!(
                    "storm: detect p10 {:.0} p50 {:.0} p90 {:.0} max {:.0} ms; attempts {}, failed {}",
                    d[d.len() / 10],
                    d[d.len() / 2],
                    d[d.len() * 9 / 10],
                    d[d.len() - 1],
                    att - before.0,
                    failed - before.1,
                ));
            }
            drop(cs);
            (back, lost, cpu_end)
        }
        Many::Zkc(cs) => {
            let mut tasks = Vec::new();
            for c in &cs {
                let c = c.clone();
                tasks.push(tokio::spawn(async move {
                    let id = c.session_id().0;
                    loop {
                        if c.get_data("/probe").await.is_ok() {
                            return (Instant::now(), c.session_id().0 == id);
                        }
                        if matches!(
                            c.state(),
                            zookeeper_client::SessionState::Expired
                                | zookeeper_client::SessionState::Closed
                        ) {
                            return (Instant::now(), false);
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }));
            }
            let (back, lost) = gather(tasks, k).await;
            let cpu_end = cpu();
            drop(cs);
            (back, lost, cpu_end)
        }
        Many::Java(mut p) => {
            let sent = Instant::now();
            let w = tokio::task::block_in_place(|| p.cmd("storm-go"))?;
            let cpu_end = cpu();
            let last = java::num(&w, 1)?;
            let expired = java::num(&w, 2)?;
            let ok = java::num(&w, 3)?;
            let at = sent + Duration::from_nanos(u64::try_from(last).unwrap_or(0));
            let missing = i64::try_from(n).unwrap_or(0) - ok;
            let lost = usize::try_from(expired.max(missing)).unwrap_or(0);
            drop(p);
            (at.saturating_duration_since(k), lost, cpu_end)
        }
    };
    let m1 = sys::machine_cpu();
    let (busy, total) = (m1.0.saturating_sub(m0.0), m1.1.saturating_sub(m0.1));
    let line = format!(
        "storm: machine busy {:.0} % of {:.1} core-s; survivor JVMs {:.0} ms, proxy thread {:.0} ms",
        100.0 * busy.as_secs_f64() / total.as_secs_f64().max(1e-9),
        total.as_secs_f64(),
        ms(jvm_cpu(&survivors).saturating_sub(j0)),
        ms(proxy_cpu().saturating_sub(p0))
    );
    step(&line);
    ctx.results.add(
        "storm",
        who.key(),
        "machine_busy_pct",
        vec![100.0 * busy.as_secs_f64() / total.as_secs_f64().max(1e-9)],
    );
    Ok((all_back, cpu_end.saturating_sub(cpu0), lost))
}

/// Waits for every per-session reader; returns K → the last success and how many were lost.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Instant, bool)>>,
    k: Instant,
) -> (Duration, usize) {
    let mut last = k;
    let mut lost = 0;
    let mut all = Vec::new();
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(60), t).await {
            Ok(Ok((at, kept))) => {
                all.push(ms(at.saturating_duration_since(k)));
                last = last.max(at);
                if !kept {
                    lost += 1;
                }
            }
            _ => lost += 1,
        }
    }
    let s = support::harness::sorted(&all);
    if !s.is_empty() {
        step(&format!(
            "storm: back p10 {:.0} p50 {:.0} p90 {:.0} p99 {:.0} max {:.0} ms",
            s[s.len() / 10],
            s[s.len() / 2],
            s[s.len() * 9 / 10],
            s[s.len() * 99 / 100],
            s[s.len() - 1]
        ));
    }
    (last.saturating_duration_since(k), lost)
}

/// Opens `n` sessions with `open`, at most 50 connecting at once.
async fn open_in_batches<T, E, Fut>(
    n: usize,
    what: &str,
    open: impl Fn() -> Fut,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    const CONCURRENCY: usize = 50;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = CONCURRENCY.min(n - out.len());
        let tasks: Vec<_> = (0..batch).map(|_| tokio::spawn(open())).collect();
        for t in tasks {
            out.push(
                t.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{what}: {e}"))?,
            );
        }
    }
    Ok(out)
}

async fn connect_many(ctx: &mut Ctx, who: Who, connstr: &str, n: usize) -> Result<Many, String> {
    match who {
        Who::Ours => {
            let out = open_in_batches(n, "connect", || {
                let cs = connstr.to_owned();
                let seed = clients::varied_seed();
                async move {
                    Client::builder(&cs)
                        .session_timeout(T6)
                        .configure_session(move |cfg| cfg.rng_seed = Some(seed))
                        .connect()
                        .await
                }
            })
            .await?;
            Ok(Many::Ours(out))
        }
        Who::Zkc => {
            let out = open_in_batches(n, "zookeeper-client connect", || {
                let cs = connstr.to_owned();
                async move {
                    zookeeper_client::Client::connector()
                        .with_session_timeout(T6)
                        .connect(&cs)
                        .await
                }
            })
            .await?;
            Ok(Many::Zkc(out))
        }
        Who::Java => {
            let mut p = JavaProbe::spawn(ctx.java_cp.as_deref().ok_or("no java")?)?;
            tokio::task::block_in_place(|| {
                p.cmd(&format!("storm-connect {connstr} {n} {}", T6.as_millis()))
            })?;
            Ok(Many::Java(p))
        }
    }
}
