//! One ZooKeeper server process.

use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::TestkitError;
use crate::process::{self, ProcState, Registry, Sig};

/// How long a single four-letter-word exchange may take before the node counts as not serving.
pub const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(3);
/// Cap on a four-letter-word answer (`cons` on a busy server can be long).
const FOUR_LETTER_MAX: u64 = 4 << 20;
/// How long `stop()` waits after SIGTERM before resorting to SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Everything needed to (re)start a JVM, shared by the nodes of one ensemble.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) java: PathBuf,
    pub(crate) classpath: OsString,
    pub(crate) jvm_flags: Vec<String>,
    /// Put each JVM in its own process group so it outlives the command that started it.
    pub(crate) detached: bool,
    pub(crate) registry: Option<Registry>,
}

/// The process behind a node.
#[derive(Debug)]
enum Proc {
    /// Started by this process.
    Child(Child),
    /// Started by an earlier `zk-ensemble` invocation; known by pid only.
    Adopted(u32),
}

/// One ZooKeeper server of an [`crate::Ensemble`].
///
/// All methods take `&self`, so an `Arc<Ensemble>` can be shared between tasks.
#[derive(Debug)]
pub struct Node {
    pub(crate) index: usize,
    pub(crate) dir: PathBuf,
    pub(crate) ports: Ports,
    pub(crate) launch: Launch,
    proc: Mutex<Option<Proc>>,
    /// In the ensemble's membership (a spare not yet started, or a retired server, is not):
    /// only members are waited for and healed.
    member: std::sync::atomic::AtomicBool,
}

/// The loopback ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    /// The server id (`myid`) these ports belong to.
    pub(crate) id: usize,
    pub(crate) client: u16,
    pub(crate) secure: Option<u16>,
    pub(crate) quorum: u16,
    pub(crate) election: u16,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Send `cmd` to `addr` and read the answer until the server closes.
pub(crate) async fn four_letter_at(
    addr: SocketAddr,
    cmd: &str,
    timeout: Duration,
) -> Result<String, TestkitError> {
    if cmd.len() != 4 || !cmd.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(TestkitError::Config(format!(
            "{cmd:?} is not a four-letter word"
        )));
    }
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(cmd.as_bytes()).await?;
        let mut buf = Vec::new();
        (&mut s).take(FOUR_LETTER_MAX).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(TestkitError::io(format!("`{cmd}` to {addr}"), e)),
        Err(_) => Err(TestkitError::Timeout {
            what: format!("`{cmd}` to {addr}"),
            after: timeout,
        }),
    }
}

/// The `Mode:` value of a `srvr` answer (`leader`, `follower`, `standalone`, `read-only`, …).
pub(crate) fn parse_mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(str::trim)
}

impl Node {
    pub(crate) fn new(
        index: usize,
        dir: PathBuf,
        ports: Ports,
        launch: Launch,
        adopted_pid: Option<u32>,
    ) -> Self {
        Self {
            index,
            dir,
            ports,
            launch,
            proc: Mutex::new(adopted_pid.map(Proc::Adopted)),
            member: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether this server is in the ensemble's membership as the test kit knows it (see
    /// [`crate::EnsembleBuilder::dynamic`]).
    pub fn is_member(&self) -> bool {
        self.member.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn set_member(&self, on: bool) {
        self.member.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The ZooKeeper server id (`myid`): 1-based, `index() + 1`. It is the high byte of every
    /// session id the node creates.
    pub fn id(&self) -> usize {
        self.index + 1
    }

    /// The 0-based position in [`crate::Ensemble::nodes`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// The plain client port (direct, not through a proxy).
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.client))
    }

    /// The TLS client port, when the ensemble has TLS.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.ports
            .secure
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
    }

    /// The node's directory (config, data, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's `zoo.cfg`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    /// The log4j log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("zk.log")
    }

    /// The JVM's stdout/stderr.
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.join("zk.out")
    }

    fn marker(&self) -> String {
        self.config_path().to_string_lossy().into_owned()
    }

    /// The pid of the JVM, if one is running (frozen counts as running).
    pub fn pid(&self) -> Option<u32> {
        let mut guard = lock(&self.proc);
        Self::refresh(&mut guard);
        match guard.as_ref()? {
            Proc::Child(c) => Some(c.id()),
            Proc::Adopted(pid) => Some(*pid),
        }
    }

    /// Forget a process that has exited (reaping our own child).
    fn refresh(slot: &mut Option<Proc>) {
        let dead = match slot {
            Some(Proc::Child(c)) => !matches!(c.try_wait(), Ok(None)),
            Some(Proc::Adopted(pid)) => {
                matches!(
                    process::proc_state(*pid),
                    ProcState::Gone | ProcState::Zombie
                )
            }
            None => false,
        };
        if dead {
            *slot = None;
        }
    }

    /// The pid, if it is certainly our JVM: our own child, or an adopted pid whose command line
    /// still names our config (pids get recycled).
    fn owned_pid(&self) -> Option<u32> {
        let mut guard = lock(&self.proc);
        Self::refresh(&mut guard);
        match guard.as_ref()? {
            Proc::Child(c) => Some(c.id()),
            Proc::Adopted(pid) => process::cmdline_contains(*pid, &self.marker()).then_some(*pid),
        }
    }

    /// Whether a JVM process exists for this node (frozen or not).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Whether the JVM is stopped by SIGSTOP.
    pub fn is_frozen(&self) -> bool {
        self.pid()
            .is_some_and(|pid| process::proc_state(pid) == ProcState::Stopped)
    }

    /// Running and not frozen: expected to answer.
    pub fn is_live(&self) -> bool {
        self.pid()
            .is_some_and(|pid| process::proc_state(pid) == ProcState::Alive)
    }

    /// Start the JVM (the node must not be running).
    pub(crate) fn spawn(&self) -> Result<(), TestkitError> {
        let mut guard = lock(&self.proc);
        Self::refresh(&mut guard);
        if guard.is_some() {
            return Ok(());
        }
        let out_path = self.stdout_path();
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(|e| TestkitError::io(format!("opening {}", out_path.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| TestkitError::io("duplicating the log file handle", e))?;
        let mut cmd = Command::new(&self.launch.java);
        cmd.args(&self.launch.jvm_flags)
            .arg(format!(
                "-Dlog4j.configuration=file:{}",
                self.dir.join("log4j.properties").display()
            ))
            .arg(format!(
                "-Dlogback.configurationFile={}",
                self.dir.join("logback.xml").display()
            ))
            .arg("-cp")
            .arg(&self.launch.classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.config_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if self.launch.detached {
            cmd.process_group(0);
        }
        let child = cmd
            .spawn()
            .map_err(|e| TestkitError::io(format!("starting {}", self.launch.java.display()), e))?;
        let pid = child.id();
        tracing::debug!(
            node = self.index,
            pid,
            port = self.ports.client,
            "ZooKeeper JVM started"
        );
        if let Some(reg) = &self.launch.registry {
            reg.record(self.index, pid, &self.marker());
        }
        *guard = Some(Proc::Child(child));
        Ok(())
    }

    /// SIGKILL the JVM and reap it. A node that is not running is left alone.
    pub fn kill(&self) -> Result<(), TestkitError> {
        let mut guard = lock(&self.proc);
        match guard.take() {
            Some(Proc::Child(mut c)) => process::kill_child(&mut c),
            Some(Proc::Adopted(pid)) if !process::kill_foreign(pid, &self.marker()) => {
                *guard = Some(Proc::Adopted(pid));
                return Err(TestkitError::Signal {
                    signal: "KILL",
                    pid,
                    detail: "process did not exit".to_owned(),
                });
            }
            Some(Proc::Adopted(_)) | None => {}
        }
        if let Some(reg) = &self.launch.registry {
            reg.forget(self.index);
        }
        tracing::debug!(node = self.index, "node killed");
        Ok(())
    }

    /// Graceful stop: SIGTERM (after SIGCONT if frozen), then wait; SIGKILL after 15 s.
    /// Errors are logged, not returned; see [`Node::try_stop`].
    pub async fn stop(&self) {
        if let Err(e) = self.try_stop().await {
            tracing::error!(node = self.index, error = %e, "stop failed");
        }
    }

    /// Like [`Node::stop`], reporting errors.
    pub async fn try_stop(&self) -> Result<(), TestkitError> {
        let Some(pid) = self.owned_pid() else {
            return Ok(());
        };
        if process::proc_state(pid) == ProcState::Stopped {
            process::send_signal(pid, Sig::Cont)?;
        }
        process::send_signal(pid, Sig::Term)?;
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.pid().is_none() {
                if let Some(reg) = &self.launch.registry {
                    reg.forget(self.index);
                }
                tracing::debug!(node = self.index, "node stopped");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(node = self.index, "no exit after SIGTERM; killing");
        self.kill()
    }

    /// SIGSTOP the JVM: it keeps its sockets but answers nothing. Errors are logged; see
    /// [`Node::try_freeze`].
    pub fn freeze(&self) {
        if let Err(e) = self.try_freeze() {
            tracing::error!(node = self.index, error = %e, "freeze failed");
        }
    }

    /// Like [`Node::freeze`], reporting errors. Returns once the kernel reports the stop.
    pub fn try_freeze(&self) -> Result<(), TestkitError> {
        self.signal_and_wait(Sig::Stop, ProcState::Stopped)
    }

    /// SIGCONT a frozen JVM. Errors are logged; see [`Node::try_thaw`].
    pub fn thaw(&self) {
        if let Err(e) = self.try_thaw() {
            tracing::error!(node = self.index, error = %e, "thaw failed");
        }
    }

    /// Like [`Node::thaw`], reporting errors.
    pub fn try_thaw(&self) -> Result<(), TestkitError> {
        self.signal_and_wait(Sig::Cont, ProcState::Alive)
    }

    fn signal_and_wait(&self, sig: Sig, want: ProcState) -> Result<(), TestkitError> {
        let pid = self
            .owned_pid()
            .ok_or(TestkitError::NotRunning { node: self.index })?;
        process::send_signal(pid, sig)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while process::proc_state(pid) != want {
            if Instant::now() >= deadline {
                return Err(TestkitError::Timeout {
                    what: format!("node {} to reach {want:?} after SIG{sig:?}", self.index),
                    after: Duration::from_secs(5),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::debug!(node = self.index, ?sig, "signal delivered");
        Ok(())
    }

    /// Start the node again with the same config and data; a running JVM is killed first. Does
    /// not wait for it to serve (use [`crate::Ensemble::wait_serving`]).
    pub async fn restart(&self) -> Result<(), TestkitError> {
        self.kill()?;
        self.spawn()
    }

    /// Whether the node answers `srvr` with a `Mode:` line within a few seconds.
    pub async fn is_serving(&self) -> bool {
        self.mode().await.is_some()
    }

    /// The node's `Mode:` (`leader`, `follower`, `standalone`, `read-only`, `observer`), if it
    /// answers.
    pub async fn mode(&self) -> Option<String> {
        if !self.is_live() {
            return None;
        }
        let answer = self.four_letter("srvr").await.ok()?;
        parse_mode(&answer).map(str::to_owned)
    }

    /// Send a four-letter word (`srvr`, `cons`, `isro`, `mntr`, …) directly to the node.
    pub async fn four_letter(&self, cmd: &str) -> Result<String, TestkitError> {
        four_letter_at(self.client_addr(), cmd, FOUR_LETTER_TIMEOUT).await
    }

    /// Whether the child has exited on its own; returns a description of its status.
    pub(crate) fn exit_status(&self) -> Option<String> {
        let mut guard = lock(&self.proc);
        match guard.as_mut()? {
            Proc::Child(c) => match c.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => None,
            },
            Proc::Adopted(_) => None,
        }
    }

    /// The last `n` lines of the node's logs, for error messages.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let mut s = String::new();
        for path in [self.log_path(), self.stdout_path()] {
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            s.push_str(&format!("--- node {} {} ---\n", self.index, path.display()));
            for l in lines.get(start..).unwrap_or_default() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}
