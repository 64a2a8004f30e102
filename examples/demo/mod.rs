//! The failover demo: start (or reach) a ZooKeeper ensemble, run a steady workload on one
//! session, kill / freeze / thaw / restart servers on a schedule, and report what the
//! application saw.
//!
//! Shared by `examples/failover_demo.rs` (the command a new user runs) and `tests/demo.rs`
//! (which runs it for a short time, non-interactively, and checks the summary).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | configuration, argument parsing, the run itself |
//! | `workload.rs` | writer, reader, persistent-watch and session-state tasks |
//! | `faults.rs` | the fault schedule and the injector |
//! | `report.rs` | failover episodes, the summary table and its checks |
//! | `metrics.rs` | `--metrics`: a Prometheus recorder, rendered after the summary |
//! | `ui.rs` | the live terminal timeline (plain ANSI) |
//! | `chart.rs` | the hand-written SVG latency chart |

mod chart;
mod faults;
mod metrics;
mod report;
mod ui;
mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zk_failover::client::{AddWatchMode, TlsConfig, acl};
use zk_failover::{Client, CreateMode, Error};
use zk_testkit::{Ensemble, STATE_FILE, TlsOptions};

pub(crate) use report::Report;
pub(crate) use ui::OutputMode;

/// Session timeout requested by default: the largest a test-kit ensemble allows (20 ticks of
/// 200 ms). Failure detection of a frozen server is `T/3` ≈ 1.3 s.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// Default run time.
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(45);
/// Deadline of each workload operation: a read or write slower than this counts as failed.
const OP_TIMEOUT: Duration = Duration::from_secs(15);
/// Parent of every run's nodes.
const ROOT: &str = "/zk-failover-demo";

/// The usage text of `failover_demo`.
pub(crate) const USAGE: &str = "\
failover_demo: a live failover demo of the zk-failover ZooKeeper client

usage: cargo run --release --example failover_demo -- [options]
       bash scripts/demo.sh [options]

With no options it starts a local 3-node ZooKeeper ensemble (zk-testkit), runs a steady
workload on one session and kills, freezes, thaws and restarts servers on a schedule.

options:
  --duration SECS     how long the workload runs (default 45)
  --tls               TLS with mutual authentication (test-kit certificates)
  --connect CONNSTR   run against an existing ensemble (faults only if it was started by
                      `zk-ensemble up`, found through $ZK_ENSEMBLE_DIR or its default dir)
  --ca FILE --cert FILE --key FILE
                      PEM files for --connect with --tls
  --no-faults         never inject faults
  --quiet             no live output, only the summary (non-interactive)
  --plain             no ANSI colours or progress line (default when stdout is not a TTY)
  --svg FILE          where to write the latency chart (default target/failover-demo.svg)
  --metrics           print the client's failover metrics (Prometheus text) at the end
                      (needs the `metrics` feature; scripts/demo.sh adds it)
  -h, --help          this text";

/// Errors of the command line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UsageError {
    /// `--help`.
    #[error("help requested")]
    Help,
    /// An argument the demo does not know.
    #[error("unknown argument {0:?}")]
    Unknown(String),
    /// An option given without its value.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// A value that does not parse.
    #[error("invalid value {value:?} for {arg}: {reason}")]
    Invalid {
        /// The option.
        arg: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Options that do not go together.
    #[error("{0}")]
    Conflict(&'static str),
}

/// Everything that can stop the demo.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// Bad command line.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The test kit could not start or reach the ensemble.
    #[error(
        "could not start the ZooKeeper ensemble: {0}\n\
         (is ZooKeeper installed? `bash scripts/demo.sh` installs Debian's `zookeeper` package)"
    )]
    Ensemble(#[from] zk_testkit::TestkitError),
    /// The client failed during set-up.
    #[error("client error: {0}")]
    Client(#[from] Error),
    /// The TLS material was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] zk_failover::transport::TlsConfigError),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// PEM files for `--connect … --tls`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsFiles {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Run against this connection string instead of a fresh ensemble.
    pub(crate) connect: Option<String>,
    /// Use TLS (mutual authentication).
    pub(crate) tls: bool,
    /// PEM files for `--connect` with `--tls`.
    pub(crate) tls_files: TlsFiles,
    /// How long the workload runs.
    pub(crate) duration: Duration,
    /// Terminal behaviour.
    pub(crate) output: OutputMode,
    /// Inject faults (when the ensemble is ours).
    pub(crate) faults: bool,
    /// Where the SVG chart goes (`None`: not written).
    pub(crate) svg: Option<PathBuf>,
    /// Requested session timeout.
    pub(crate) session_timeout: Duration,
    /// Stop early (and still summarise) on Ctrl-C.
    pub(crate) stop_on_ctrl_c: bool,
    /// Record the client's metrics and print them after the summary.
    pub(crate) metrics: bool,
}

impl Config {
    /// The defaults of the command: a fresh plain-TCP ensemble, 45 s, faults on.
    pub(crate) fn new() -> Self {
        Self {
            connect: None,
            tls: false,
            tls_files: TlsFiles::default(),
            duration: DEFAULT_DURATION,
            output: OutputMode::detect(),
            faults: true,
            svg: Some(default_svg_path()),
            session_timeout: SESSION_TIMEOUT,
            stop_on_ctrl_c: true,
            metrics: false,
        }
    }

    /// Parses the command line (without the program name).
    pub(crate) fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, UsageError> {
        let mut cfg = Self::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &'static str| args.next().ok_or(UsageError::MissingValue(name));
            match arg.as_str() {
                "-h" | "--help" => return Err(UsageError::Help),
                "--tls" => cfg.tls = true,
                "--quiet" | "-q" => cfg.output = OutputMode::Quiet,
                "--plain" => {
                    if cfg.output != OutputMode::Quiet {
                        cfg.output = OutputMode::Plain;
                    }
                }
                "--no-faults" => cfg.faults = false,
                "--metrics" => cfg.metrics = true,
                "--connect" => cfg.connect = Some(value("--connect")?),
                "--duration" => {
                    let v = value("--duration")?;
                    cfg.duration = parse_secs(&v).ok_or(UsageError::Invalid {
                        arg: "--duration",
                        value: v,
                        reason: "expected seconds between 1 and 86400",
                    })?;
                }
                "--svg" => cfg.svg = Some(PathBuf::from(value("--svg")?)),
                "--ca" => cfg.tls_files.ca = Some(PathBuf::from(value("--ca")?)),
                "--cert" => cfg.tls_files.cert = Some(PathBuf::from(value("--cert")?)),
                "--key" => cfg.tls_files.key = Some(PathBuf::from(value("--key")?)),
                _ => return Err(UsageError::Unknown(arg)),
            }
        }
        let files = &cfg.tls_files;
        let any_file = files.ca.is_some() || files.cert.is_some() || files.key.is_some();
        if any_file && (cfg.connect.is_none() || !cfg.tls) {
            return Err(UsageError::Conflict(
                "--ca/--cert/--key go with --connect and --tls",
            ));
        }
        if files.cert.is_some() != files.key.is_some() {
            return Err(UsageError::Conflict("--cert and --key go together"));
        }
        Ok(cfg)
    }
}

fn parse_secs(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().trim_end_matches('s').parse().ok()?;
    (1.0..=86_400.0)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// `target/failover-demo.svg` (honouring `CARGO_TARGET_DIR`).
pub(crate) fn default_svg_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("failover-demo.svg")
}

/// Names servers for the timeline: `server N` (the node's `myid`) when the ensemble is known.
#[derive(Clone)]
pub(crate) struct Namer {
    ensemble: Option<Arc<Ensemble>>,
}

impl Namer {
    pub(crate) fn name(&self, addr: Option<SocketAddr>) -> String {
        match (addr, &self.ensemble) {
            (None, _) => "no server".to_owned(),
            (Some(a), Some(ens)) => match ens.node_for_addr(a) {
                Some(i) => format!("server {}", i + 1),
                None => a.to_string(),
            },
            (Some(a), None) => a.to_string(),
        }
    }
}

/// Where the workload runs.
struct Target {
    ensemble: Option<Arc<Ensemble>>,
    connect: String,
    tls: Option<TlsConfig>,
    description: String,
    faults: bool,
}

async fn prepare(cfg: &Config, ui: &ui::Ui) -> Result<Target, DemoError> {
    if let Some(cs) = &cfg.connect {
        let attached = attach_zk_ensemble(cs);
        let tls = if cfg.tls {
            Some(tls_from_files(&cfg.tls_files, attached.as_ref())?)
        } else {
            None
        };
        let faults = cfg.faults && attached.is_some();
        let description = match &attached {
            Some(ens) => format!(
                "{}-node ensemble started by zk-ensemble ({})",
                ens.nodes().len(),
                ens.dir().display()
            ),
            None => "an existing ensemble".to_owned(),
        };
        if attached.is_none() && cfg.faults {
            ui.setup(
                "not a zk-ensemble ensemble: no fault injection (kill servers yourself to see failovers)",
            );
        }
        return Ok(Target {
            ensemble: attached.map(Arc::new),
            connect: cs.clone(),
            tls,
            description,
            faults,
        });
    }
    let started = Instant::now();
    ui.setup(&format!(
        "starting a 3-node ZooKeeper ensemble with zk-testkit (jar: {}){}",
        zk_testkit::jar_path().display(),
        if cfg.tls {
            ", TLS with client certificates"
        } else {
            ""
        }
    ));
    let mut builder = Ensemble::builder().nodes(3);
    if cfg.tls {
        builder = builder.tls(TlsOptions::default());
    }
    let ens = builder.start().await?;
    let (connect, tls) = if cfg.tls {
        let material = ens.tls().ok_or(DemoError::Usage(UsageError::Conflict(
            "the ensemble started without TLS material",
        )))?;
        let tls = TlsConfig::builder()
            .ca_pem(&material.ca_pem)?
            .client_cert_pem(&material.client_cert_pem, &material.client_key_pem)?
            .build()?;
        let cs = ens
            .tls_connect_string()
            .ok_or(DemoError::Usage(UsageError::Conflict(
                "the ensemble has no TLS ports",
            )))?;
        (cs, Some(tls))
    } else {
        (ens.connect_string(), None)
    };
    ui.setup(&format!(
        "ensemble serving after {:.1} s: {connect}  (logs: {})",
        started.elapsed().as_secs_f64(),
        ens.dir().display()
    ));
    Ok(Target {
        description: format!(
            "3-node ZooKeeper ensemble (zk-testkit, {})",
            if cfg.tls {
                "TLS + client certificates"
            } else {
                "plain TCP"
            }
        ),
        ensemble: Some(Arc::new(ens)),
        connect,
        tls,
        faults: cfg.faults,
    })
}

/// The ensemble `zk-ensemble up` started, if `cs` is its connection string.
fn attach_zk_ensemble(cs: &str) -> Option<Ensemble> {
    let dir = std::env::var_os("ZK_ENSEMBLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .filter(|d| d.is_dir())
                .unwrap_or_else(std::env::temp_dir)
                .join("zk-ensemble")
        });
    if !dir.join(STATE_FILE).exists() {
        return None;
    }
    let ens = Ensemble::attach(&dir).ok()?;
    let hosts = |s: &str| -> Vec<String> {
        let mut h: Vec<String> = s
            .split('/')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|x| x.trim().to_owned())
            .collect();
        h.sort();
        h
    };
    let wanted = hosts(cs);
    let ours = [
        Some(ens.connect_string()),
        Some(ens.direct_connect_string()),
        ens.tls_connect_string(),
        ens.direct_tls_connect_string(),
    ];
    ours.iter()
        .flatten()
        .any(|o| hosts(o) == wanted)
        .then_some(ens)
}

fn tls_from_files(files: &TlsFiles, attached: Option<&Ensemble>) -> Result<TlsConfig, DemoError> {
    // An ensemble started by `zk-ensemble up --tls` has its material on disk.
    if files.ca.is_none()
        && let Some(m) = attached.and_then(Ensemble::tls)
    {
        return Ok(TlsConfig::builder()
            .ca_pem(&m.ca_pem)?
            .client_cert_pem(&m.client_cert_pem, &m.client_key_pem)?
            .build()?);
    }
    let mut b = TlsConfig::builder();
    if let Some(ca) = &files.ca {
        b = b.ca_pem_file(ca)?;
    }
    if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
        b = b.client_cert_pem_file(cert, key)?;
    }
    Ok(b.build()?)
}

/// Runs the demo and returns its report (also printed unless quiet).
pub(crate) async fn run(cfg: Config) -> Result<Report, DemoError> {
    let recorder = if cfg.metrics {
        Some(metrics::start()?)
    } else {
        None
    };
    let ui = Arc::new(ui::Ui::new(cfg.output));
    let target = prepare(&cfg, &ui).await?;
    let namer = Namer {
        ensemble: target.ensemble.clone(),
    };

    let mut builder = Client::builder(&target.connect)
        .session_timeout(cfg.session_timeout)
        .connect_timeout(Duration::from_secs(30))
        .operation_timeout(OP_TIMEOUT);
    if let Some(tls) = target.tls.clone() {
        builder = builder.tls(tls);
    }
    let client = builder.connect().await?;
    let session_id = client.session_id();
    let negotiated = client.negotiated_timeout().unwrap_or(cfg.session_timeout);
    ui.setup(&format!(
        "session {session_id:#x} on {}, negotiated timeout {} ms (frozen-server detection after {} ms)",
        namer.name(client.server()),
        negotiated.as_millis(),
        (negotiated / 3).as_millis()
    ));

    // The run's nodes: a counter the writer bumps, an ephemeral node that must survive.
    match client
        .create(ROOT, "", &acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(Error::NoNode) => {
            return Err(DemoError::Usage(UsageError::Conflict(
                "the connection string's chroot does not exist on the ensemble: create it first",
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let dir = format!("{ROOT}/{session_id:016x}");
    let counter = format!("{dir}/counter");
    let alive = format!("{dir}/alive");
    client
        .create(&dir, "", &acl::open_unsafe(), CreateMode::Persistent)
        .await?;
    client
        .create(&counter, "0", &acl::open_unsafe(), CreateMode::Persistent)
        .await?;
    client
        .create(&alive, "here", &acl::open_unsafe(), CreateMode::Ephemeral)
        .await?;
    let watcher = client.add_watch(&counter, AddWatchMode::Persistent).await?;
    ui.setup(&format!(
        "workload: setData {counter} every {} ms, getData/exists every {} ms, ephemeral {alive}, persistent watch on the counter",
        workload::WRITE_EVERY.as_millis(),
        workload::READ_EVERY.as_millis()
    ));

    let plan = if target.faults {
        faults::schedule(cfg.duration)
    } else {
        Vec::new()
    };
    if !plan.is_empty() {
        ui.setup(&format!(
            "fault schedule: {}",
            plan.iter()
                .map(|c| format!("{:.0} s {}", c.apply.as_secs_f64(), c.describe()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let t0 = Instant::now();
    ui.start(t0, cfg.duration);
    let live = Arc::new(workload::Live::new(t0));
    live.set_server(namer.name(client.server()), client.state());
    ui.event(
        ui::Tone::Info,
        &format!(
            "workload started; session on {}",
            namer.name(client.server())
        ),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let (end_tx, end_rx) = watch::channel(false);
    let monitor = tokio::spawn(workload::monitor(
        client.clone(),
        namer.clone(),
        Arc::clone(&live),
        Arc::clone(&ui),
        end_rx.clone(),
    ));
    let watch_task = tokio::spawn(workload::watch(
        watcher,
        Arc::clone(&live),
        Arc::clone(&ui),
        end_rx.clone(),
    ));
    let ticker = tokio::spawn(ui::ticker(
        Arc::clone(&ui),
        Arc::clone(&live),
        end_rx.clone(),
    ));
    let writer = tokio::spawn(workload::writer(
        client.clone(),
        counter.clone(),
        Arc::clone(&live),
        Arc::clone(&ui),
        stop_rx.clone(),
    ));
    let reader = tokio::spawn(workload::reader(
        client.clone(),
        counter.clone(),
        alive.clone(),
        Arc::clone(&live),
        Arc::clone(&ui),
        stop_rx.clone(),
    ));
    let injector = target.ensemble.clone().map(|ens| {
        tokio::spawn(faults::inject(
            ens,
            client.clone(),
            plan,
            t0,
            Arc::clone(&live),
            Arc::clone(&ui),
            stop_rx.clone(),
        ))
    });

    let interrupted = wait_for_end(cfg.duration, cfg.stop_on_ctrl_c).await;
    if interrupted {
        ui.event(ui::Tone::Warn, "interrupted: stopping the workload early");
    }
    let _ = stop_tx.send(true);
    let write_samples = writer.await.unwrap_or_default();
    let read_samples = reader.await.unwrap_or_default();
    let steps = match injector {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let workload_time = t0.elapsed();

    // Final state, read on the same session.
    let final_state = client.wait_connected(Duration::from_secs(20)).await;
    let changes = client.get_data(&counter).await.ok().map(|(_, s)| s.version);
    let ephemeral_at_end = matches!(client.exists(&alive).await, Ok(Some(_)));
    // Notifications for acknowledged writes precede their replies; give the watch task a
    // moment to count the last ones before it stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = end_tx.send(true);
    let tally = watch_task.await.unwrap_or_default();
    let transitions = monitor.await.unwrap_or_default();
    let _ = ticker.await;
    ui.end_progress();

    let counters = client.counters();
    let mut samples = write_samples;
    samples.extend(read_samples);
    samples.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut report = Report::build(report::Inputs {
        description: target.description.clone(),
        negotiated,
        session_id,
        session_id_end: client.session_id(),
        final_state,
        ephemeral_at_end,
        t0,
        workload_time,
        planned: cfg.duration,
        interrupted,
        steps,
        transitions,
        samples,
        live: &live,
        tally,
        changes,
        counters,
        namer: &namer,
        svg: cfg.svg.clone(),
    });

    if let Some(path) = &cfg.svg {
        let svg = chart::render(&report);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(path, svg).map_err(|source| DemoError::Io {
            path: path.clone(),
            source,
        })?;
    }
    report.metrics = recorder.as_ref().map(metrics::Metrics::render);
    ui.block(&report.render(ui.color()));

    // Clean up this run's nodes (best effort) and end the session.
    let _ = client.delete(&alive, -1).await;
    let _ = client.delete(&counter, -1).await;
    let _ = client.delete(&dir, -1).await;
    client.close().await;
    drop(target);
    Ok(report)
}

/// Sleeps for `duration`, or until Ctrl-C; returns whether it was interrupted.
async fn wait_for_end(duration: Duration, ctrl_c: bool) -> bool {
    if !ctrl_c {
        tokio::time::sleep(duration).await;
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        r = tokio::signal::ctrl_c() => r.is_ok(),
    }
}
