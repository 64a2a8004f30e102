//! The error type of the test kit.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting, controlling or querying an ensemble.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The ZooKeeper server jar is missing (set `ZK_TESTKIT_JAR` or install Debian's `zookeeper`).
    #[error(
        "ZooKeeper jar not found at {path} (install the `zookeeper` package or set ZK_TESTKIT_JAR)"
    )]
    JarNotFound {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// No `java` executable on `PATH` (and `ZK_TESTKIT_JAVA` unset).
    #[error("no `java` executable found on PATH (install a JRE or set ZK_TESTKIT_JAVA)")]
    JavaNotFound,
    /// An operating-system call failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the test kit was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The ensemble did not become ready in time. The temp dir is kept so the logs can be read.
    #[error(
        "ensemble not serving after {waited:?}: {reason}\nlogs: {logs:?}\nlast log lines:\n{tail}"
    )]
    StartTimeout {
        /// How long the test kit waited.
        waited: Duration,
        /// What was still missing.
        reason: String,
        /// The per-node log files.
        logs: Vec<PathBuf>,
        /// The last lines of every log, labelled by node.
        tail: String,
    },
    /// A node process exited while the ensemble was starting.
    #[error(
        "node {node} exited during start-up ({status})\nlogs: {logs:?}\nlast log lines:\n{tail}"
    )]
    NodeExited {
        /// 0-based node index.
        node: usize,
        /// The exit status as reported by the OS.
        status: String,
        /// The per-node log files.
        logs: Vec<PathBuf>,
        /// The last lines of every log, labelled by node.
        tail: String,
    },
    /// A node index outside `0..nodes`.
    #[error("no node {index} (the ensemble has {count} nodes)")]
    NoSuchNode {
        /// The index asked for.
        index: usize,
        /// How many nodes exist.
        count: usize,
    },
    /// The node has no running process (it was killed or stopped).
    #[error("node {node} is not running")]
    NotRunning {
        /// 0-based node index.
        node: usize,
    },
    /// A four-letter-word exchange or a wait did not finish in time.
    #[error("timed out after {after:?} while {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit that was hit.
        after: Duration,
    },
    /// Generating test certificates failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A signal could not be delivered (the `kill` command failed).
    #[error("could not send SIG{signal} to pid {pid}: {detail}")]
    Signal {
        /// Signal name without the `SIG` prefix.
        signal: &'static str,
        /// Target process.
        pid: u32,
        /// What `kill` reported.
        detail: String,
    },
    /// A state file written by `zk-ensemble up` is missing or malformed.
    #[error("bad ensemble state file {path}: {detail}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// An option combination that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl TestkitError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
