//! Real Apache ZooKeeper ensembles for tests, with fault injection.
//!
//! `zk-testkit` starts N-node quorums (or a standalone server) of the ZooKeeper server found on
//! the machine — Debian's `zookeeper` package by default (`/usr/share/java/zookeeper.jar`,
//! override with `ZK_TESTKIT_JAR`), Java from `PATH` — on free loopback ports in a temp dir,
//! and lets tests kill, stop, freeze, thaw and restart individual servers, put a
//! [`FaultProxy`] in front of each one, enable TLS (with generated certificates) or read-only
//! mode. No Docker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_testkit::TestkitError> {
//! use std::time::Duration;
//! use zk_testkit::Ensemble;
//!
//! let ens = Ensemble::builder().nodes(3).proxies(true).start().await?;
//! let leader = ens.wait_for_leader(Duration::from_secs(30)).await?;
//! ens.node(leader).kill()?;
//! ens.wait_serving(Duration::from_secs(30)).await?;
//! assert_ne!(ens.wait_for_leader(Duration::from_secs(30)).await?, leader);
//! # Ok(()) }
//! ```
//!
//! # No orphans
//! A JVM must never outlive the test that started it:
//! - dropping an [`Ensemble`] SIGKILLs and reaps every JVM (this also runs while a panicking
//!   test unwinds);
//! - a small `/bin/sh` watchdog per ensemble polls the owning process every 0.5 s and kills the
//!   JVMs (and removes the temp dir) as soon as it is gone (test binary SIGKILLed,
//!   `process::exit`, ensemble leaked in a `static` whose destructor never runs);
//! - each JVM has a pid file in [`registry_dir`] (`$TMPDIR/zk-testkit-pids`) naming its owner
//!   (pid and start time); every ensemble start reaps entries of dead owners
//!   ([`reap_orphans`]). A pid is killed only if `/proc/<pid>/cmdline` still names the node's
//!   config file.
//!
//! JVMs stay in the test's process group, so Ctrl-C and nextest's group kill on timeout reach
//! them too. `prctl(PR_SET_PDEATHSIG)` would need `unsafe` (forbidden here); signals other than
//! SIGKILL-to-own-child are sent with the shell's `kill` builtin for the same reason.
//!
//! # JVM flags
//! Each server runs with `-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData`
//! and `-Dzookeeper.fastleader.maxNotificationInterval=1000`, which together halve the start-up
//! time of a quorum. C1-only code is slower when hot: benchmarks of server throughput may add
//! `.jvm_flag("-XX:TieredStopAtLevel=4")` (later flags win). Extended types are on
//! (`zookeeper.extendedTypesEnabled`), so TTL and container nodes work.
//!
//! # Environment
//! - `ZK_TESTKIT_JAR`: server jar (default `/usr/share/java/zookeeper.jar`; for a non-Debian
//!   layout every jar in the same directory joins the class path);
//! - `ZK_TESTKIT_JAVA`: java executable (default: `java` on `PATH`, then `$JAVA_HOME/bin/java`);
//! - `ZK_TESTKIT_CLASSPATH`: extra class-path entries;
//! - `ZK_TESTKIT_KEEP=1`: keep ensemble directories (logs, data) after drop;
//! - `ZK_TESTKIT_PID_DIR`: pid registry directory.
#![forbid(unsafe_code)]

mod ensemble;
mod error;
mod kdc;
mod node;
mod process;
mod proxy;
mod sasl;
mod state;
mod tls;

pub use ensemble::{
    DEFAULT_JAR, DEFAULT_START_TIMEOUT, DEFAULT_TICK, Ensemble, EnsembleBuilder, jar_path,
};
pub use error::TestkitError;
pub use kdc::{Kdc, REALM, kdc_available};
pub use node::{FOUR_LETTER_TIMEOUT, Node};
pub use process::{pids_referencing, reap_orphans, reap_orphans_in, registry_dir};
pub use proxy::{CHUNK, FaultProxy, HeldFrame, HoldFilter, ProxyMode, QUEUE_CHUNKS};
pub use sasl::SaslServer;
pub use state::STATE_FILE;
pub use tls::{ClientAuth, Leaf, TestCa, TlsMaterial, TlsOptions, self_signed};

/// The tokio runtime a test binary shares (multi-threaded, 2 workers, everything enabled):
/// built on first use, one per process. Ensembles started on it keep their tasks (proxies,
/// watchdogs) alive between the tests of the binary, which a `#[tokio::test]` runtime per test
/// would not.
///
/// # Panics
/// If the runtime cannot be built (no threads can be spawned).
pub fn test_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        #[allow(clippy::expect_used, reason = "a test binary cannot run without it")]
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the test runtime")
    })
}
