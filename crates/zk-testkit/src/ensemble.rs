//! [`Ensemble`] and [`EnsembleBuilder`]: N real ZooKeeper servers on loopback.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::TestkitError;
use crate::node::{Launch, Node, Ports};
use crate::process::{self, Registry};
use crate::proxy::FaultProxy;
use crate::sasl::SaslServer;
use crate::tls::{ClientAuth, TlsMaterial, TlsOptions};

/// Default `tickTime`: 200 ms, so session timeouts of 0.4–4 s are allowed.
pub const DEFAULT_TICK: Duration = Duration::from_millis(200);
/// Default limit for an ensemble to start serving.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(90);
/// Where Debian's `zookeeper` package puts the server jar.
pub const DEFAULT_JAR: &str = "/usr/share/java/zookeeper.jar";
/// Jars added next to Debian's `zookeeper.jar`: logging, and Netty's codec, which the jar's
/// manifest class path lacks (without it every Netty/TLS connection dies).
const DEBIAN_EXTRA_JARS: [&str; 3] = ["log4j-1.2.jar", "slf4j-log4j12.jar", "netty-codec.jar"];
/// Attempts when a freshly chosen port was taken by someone else before the JVM bound it.
const PORT_ATTEMPTS: usize = 3;

/// Configures and starts an [`Ensemble`]. Obtain one with [`Ensemble::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EnsembleBuilder {
    nodes: usize,
    tick_time: Duration,
    max_session_timeout: Option<Duration>,
    min_session_timeout: Option<Duration>,
    tls: Option<TlsOptions>,
    read_only: bool,
    proxies: bool,
    start_timeout: Duration,
    dir: Option<PathBuf>,
    detached: bool,
    watchdog: bool,
    wait: bool,
    heap_mb: u32,
    force_sync: bool,
    extra_config: Vec<(String, String)>,
    extra_jvm_flags: Vec<String>,
    spares: usize,
    dynamic: bool,
    sasl: Option<SaslServer>,
}

impl Default for EnsembleBuilder {
    fn default() -> Self {
        Self {
            nodes: 3,
            tick_time: DEFAULT_TICK,
            max_session_timeout: None,
            min_session_timeout: None,
            tls: None,
            read_only: false,
            proxies: false,
            start_timeout: DEFAULT_START_TIMEOUT,
            dir: None,
            detached: false,
            watchdog: true,
            wait: true,
            heap_mb: 128,
            force_sync: true,
            extra_config: Vec::new(),
            extra_jvm_flags: Vec::new(),
            spares: 0,
            dynamic: false,
            sasl: None,
        }
    }
}

impl EnsembleBuilder {
    /// Number of servers (default 3). One node runs ZooKeeper in standalone mode.
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// `tickTime` (default 200 ms). Session timeouts are clamped to 2–20 ticks by default.
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.tick_time = tick;
        self
    }

    /// `maxSessionTimeout` (default 20 ticks), e.g. 30 s for benchmarks with a short tick.
    pub fn max_session_timeout(mut self, t: Duration) -> Self {
        self.max_session_timeout = Some(t);
        self
    }

    /// `minSessionTimeout` (default 2 ticks).
    pub fn min_session_timeout(mut self, t: Duration) -> Self {
        self.min_session_timeout = Some(t);
        self
    }

    /// Serve TLS on a `secureClientPort` of every node (Netty factory, PEM stores, certificates
    /// from [`TlsMaterial`]). The plain port stays open too (and moves to Netty).
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Enable read-only mode (`-Dreadonlymode.enabled=true` plus `localSessionsEnabled=true`
    /// and `localSessionsUpgradingEnabled=true`, without which 3.8 cannot serve read-only
    /// sessions).
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Put a [`FaultProxy`] in front of every node's client port (and TLS port, with TLS);
    /// [`Ensemble::connect_string`] and [`Ensemble::tls_connect_string`] then go through them.
    pub fn proxies(mut self, on: bool) -> Self {
        self.proxies = on;
        self
    }

    /// How long [`EnsembleBuilder::start`] waits for every node to serve (default 90 s).
    pub fn start_timeout(mut self, t: Duration) -> Self {
        self.start_timeout = t;
        self
    }

    /// Use this directory (absent or empty) instead of a fresh temp dir. It is not removed on
    /// drop; [`Ensemble::shutdown`] removes it.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Start the JVMs in their own process groups, without pid registry or watchdog, so they
    /// can outlive this process after [`Ensemble::detach`]. Used by `zk-ensemble up`.
    pub fn detached(mut self, on: bool) -> Self {
        self.detached = on;
        self
    }

    /// Run the orphan watchdog (default on; see the crate docs). Turning it off leaves only
    /// `Drop` and the start-time reaper.
    pub fn orphan_watchdog(mut self, on: bool) -> Self {
        self.watchdog = on;
        self
    }

    /// Whether `start` waits until every node serves (default true).
    pub fn wait_serving(mut self, on: bool) -> Self {
        self.wait = on;
        self
    }

    /// JVM heap limit in MiB (default 128).
    pub fn heap_mb(mut self, mb: u32) -> Self {
        self.heap_mb = mb;
        self
    }

    /// `forceSync` (default true: fsync every transaction, as in production).
    pub fn force_sync(mut self, on: bool) -> Self {
        self.force_sync = on;
        self
    }

    /// Append `key=value` to every node's `zoo.cfg`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_config.push((key.into(), value.into()));
        self
    }

    /// Dynamic membership: `reconfigEnabled=true` (with `zookeeper.skipACL`, so any session
    /// may reconfigure), every server line naming its client address
    /// (`server.N=127.0.0.1:q:e:participant;127.0.0.1:client`, so clients can follow the
    /// configuration), and `spares` more servers prepared but not started: they join with
    /// [`Ensemble::start_spare`] and the `reconfig` their [`Ensemble::server_line`] names.
    /// [`Ensemble::retire`] stops a server that was removed. Spares and retired servers are
    /// not waited for or healed.
    pub fn dynamic(mut self, spares: usize) -> Self {
        self.spares = spares;
        self.dynamic = true;
        self.extra_config
            .push(("reconfigEnabled".into(), "true".into()));
        self.extra_config
            .push(("standaloneEnabled".into(), "false".into()));
        self.extra_jvm_flags.push("-Dzookeeper.skipACL=yes".into());
        self
    }

    /// Authenticate clients with SASL (DIGEST-MD5 users or Kerberos), optionally enforced:
    /// see [`SaslServer`].
    pub fn sasl(mut self, sasl: SaslServer) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Add a JVM flag (e.g. `-Dzookeeper.something=1`) to every node.
    pub fn jvm_flag(mut self, flag: impl Into<String>) -> Self {
        self.extra_jvm_flags.push(flag.into());
        self
    }

    fn validate(&self) -> Result<(), TestkitError> {
        if !(1..=250).contains(&self.nodes) {
            return Err(TestkitError::Config(format!(
                "nodes must be 1..=250, not {}",
                self.nodes
            )));
        }
        if self.tick_time < Duration::from_millis(1) {
            return Err(TestkitError::Config(
                "tick_time must be at least 1 ms".into(),
            ));
        }
        for (k, v) in &self.extra_config {
            if k.contains(['=', '\n']) || v.contains('\n') {
                return Err(TestkitError::Config(format!("bad config line {k}={v}")));
            }
        }
        Ok(())
    }

    /// Start the ensemble and (unless disabled) wait until every node serves.
    pub async fn start(self) -> Result<Ensemble, TestkitError> {
        self.validate()?;
        let reaped = process::reap_orphans();
        if reaped > 0 {
            tracing::warn!(reaped, "killed JVMs left behind by dead test processes");
        }
        let jar = jar_path();
        if !jar.is_file() {
            return Err(TestkitError::JarNotFound { path: jar });
        }
        let java = find_java()?;
        let t0 = Instant::now();

        let (tempdir, root) = match &self.dir {
            Some(d) => {
                prepare_dir(d)?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("zk-testkit-")
                    .tempdir()
                    .map_err(|e| TestkitError::io("creating a temp dir", e))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let tls = match self.tls {
            Some(_) => Some(TlsMaterial::generate(&root.join("tls"))?),
            None => None,
        };
        let tag = root
            .file_name()
            .map_or_else(|| "ensemble".into(), |n| n.to_string_lossy().into_owned());
        let registry = if self.detached {
            None
        } else {
            Some(Registry::new(&tag)?)
        };
        // The watchdog deletes our temp dir after killing the JVMs (not a directory the user
        // chose, and not when asked to keep it).
        let scratch = tempdir
            .as_ref()
            .filter(|_| !keep_requested())
            .map(tempfile::TempDir::path);
        let watchdog = match (&registry, self.watchdog) {
            (Some(r), true) => Some(r.spawn_watchdog(scratch)?),
            _ => None,
        };
        let mut jvm_flags = self.jvm_flags();
        let mut extra_config = self.extra_config.clone();
        if let Some(sasl) = &self.sasl {
            let jaas = root.join("jaas.conf");
            fs::write(&jaas, sasl.jaas())
                .map_err(|e| TestkitError::io("writing the servers' JAAS file", e))?;
            jvm_flags.extend(sasl.jvm_flags(&jaas));
            extra_config.extend(sasl.config());
        }
        let launch = Launch {
            java,
            classpath: classpath(&jar),
            jvm_flags,
            detached: self.detached,
            registry,
        };
        let settings = Settings {
            tick: self.tick_time,
            max_session: self.max_session_timeout,
            min_session: self.min_session_timeout,
            read_only: self.read_only,
            client_auth: self.tls.map(|t| t.client_auth),
            force_sync: self.force_sync,
            extra_config,
            dynamic: self.dynamic,
        };
        let mut ens = Ensemble {
            nodes: Vec::new(),
            proxies: Vec::new(),
            tls_proxies: Vec::new(),
            root,
            tempdir,
            tls,
            settings,
            owned: true,
            keep_dir: false,
            watchdog: Mutex::new(watchdog),
        };

        let deadline = t0 + self.start_timeout;
        for attempt in 1..=PORT_ATTEMPTS {
            let ports = allocate_ports(self.nodes + self.spares, self.tls.is_some())?;
            ens.nodes = ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let node = Node::new(
                        i,
                        ens.root.join(format!("n{}", i + 1)),
                        *p,
                        launch.clone(),
                        None,
                    );
                    node.set_member(i < self.nodes);
                    node
                })
                .collect();
            let members = &ports[..self.nodes];
            for node in &ens.nodes {
                // A spare's configuration: the members and itself (it joins as their learner
                // until a reconfig makes it a member).
                let mut view = members.to_vec();
                if node.index >= self.nodes {
                    view.push(node.ports);
                }
                write_node_files(node, &view, &ens.settings, ens.tls.as_ref())?;
            }
            for node in ens.nodes.iter().filter(|n| n.is_member()) {
                node.spawn()?;
            }
            if !self.wait {
                break;
            }
            match ens.wait_started(deadline, self.start_timeout).await {
                Ok(()) => break,
                Err(TestkitError::NodeExited { tail, .. })
                    if attempt < PORT_ATTEMPTS && is_bind_conflict(&tail) =>
                {
                    tracing::warn!(
                        attempt,
                        "port conflict while starting; retrying with new ports"
                    );
                    for node in &ens.nodes {
                        let _ = node.kill();
                    }
                    for node in &ens.nodes {
                        let _ = fs::remove_dir_all(&node.dir);
                    }
                }
                Err(e) => {
                    ens.keep_dir = true;
                    return Err(e);
                }
            }
        }
        if self.proxies {
            for node in &ens.nodes {
                let proxy = FaultProxy::start(node.client_addr())
                    .await
                    .map_err(|e| TestkitError::io("starting a fault proxy", e))?;
                ens.proxies.push(proxy);
                if let Some(secure) = node.secure_addr() {
                    let proxy = FaultProxy::start(secure)
                        .await
                        .map_err(|e| TestkitError::io("starting a fault proxy", e))?;
                    ens.tls_proxies.push(proxy);
                }
            }
        }
        tracing::info!(
            nodes = self.nodes,
            elapsed_ms = t0.elapsed().as_millis(),
            dir = %ens.root.display(),
            connect = %ens.connect_string(),
            "ZooKeeper ensemble started"
        );
        Ok(ens)
    }

    /// [`EnsembleBuilder::start`] for synchronous code, e.g. to fill a `static` shared by all
    /// tests of a binary (the orphan watchdog kills the JVMs after the process exits, since
    /// statics are never dropped). Fails if called from inside an async runtime.
    pub fn start_blocking(self) -> Result<Ensemble, TestkitError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(TestkitError::Config(
                "start_blocking called inside an async runtime; use start().await".into(),
            ));
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestkitError::io("building a runtime", e))?
            .block_on(self.start())
    }

    fn jvm_flags(&self) -> Vec<String> {
        let mut flags = vec![
            format!("-Xmx{}m", self.heap_mb),
            "-XX:+UseSerialGC".to_owned(),
            "-XX:TieredStopAtLevel=1".to_owned(),
            "-XX:-UsePerfData".to_owned(),
            "-Djava.net.preferIPv4Stack=true".to_owned(),
            "-Dzookeeper.admin.enableServer=false".to_owned(),
            "-Dzookeeper.extendedTypesEnabled=true".to_owned(),
            // Peers that start a little later are retried sooner (default backoff grows to 60 s).
            "-Dzookeeper.fastleader.maxNotificationInterval=1000".to_owned(),
        ];
        if self.read_only {
            flags.push("-Dreadonlymode.enabled=true".to_owned());
        }
        flags.extend(self.extra_jvm_flags.iter().cloned());
        flags
    }
}

/// What goes into every node's `zoo.cfg`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) tick: Duration,
    pub(crate) max_session: Option<Duration>,
    pub(crate) min_session: Option<Duration>,
    pub(crate) read_only: bool,
    pub(crate) client_auth: Option<ClientAuth>,
    pub(crate) force_sync: bool,
    pub(crate) extra_config: Vec<(String, String)>,
    /// Server lines name client addresses; no `clientPort` line.
    pub(crate) dynamic: bool,
}

/// The jar: `ZK_TESTKIT_JAR`, else Debian's path.
pub fn jar_path() -> PathBuf {
    std::env::var_os("ZK_TESTKIT_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_JAR))
}

fn find_java() -> Result<PathBuf, TestkitError> {
    if let Some(j) = std::env::var_os("ZK_TESTKIT_JAVA") {
        return Ok(PathBuf::from(j));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("java"))
            .find(|p| p.is_file())
    });
    if let Some(p) = on_path {
        return Ok(p);
    }
    std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .filter(|p| p.is_file())
        .ok_or(TestkitError::JavaNotFound)
}

/// Debian layout: the jar plus the few jars its manifest misses. Any other layout (an upstream
/// tarball's `lib/`): every jar next to it. `ZK_TESTKIT_CLASSPATH` is appended.
fn classpath(jar: &Path) -> OsString {
    let mut parts: Vec<OsString> = vec![jar.as_os_str().to_owned()];
    if let Some(dir) = jar.parent() {
        if dir == Path::new("/usr/share/java") {
            for extra in DEBIAN_EXTRA_JARS {
                let p = dir.join(extra);
                if p.is_file() {
                    parts.push(p.into_os_string());
                }
            }
        } else {
            parts.push(dir.join("*").into_os_string());
        }
    }
    if let Some(extra) = std::env::var_os("ZK_TESTKIT_CLASSPATH") {
        parts.push(extra);
    }
    let mut cp = OsString::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            cp.push(":");
        }
        cp.push(p);
    }
    cp
}

fn prepare_dir(d: &Path) -> Result<(), TestkitError> {
    let ctx = |what: &str| format!("{what} {}", d.display());
    if d.exists() {
        let mut entries = fs::read_dir(d).map_err(|e| TestkitError::io(ctx("reading"), e))?;
        if entries.next().is_some() {
            return Err(TestkitError::Config(format!(
                "{} exists and is not empty",
                d.display()
            )));
        }
    }
    fs::create_dir_all(d).map_err(|e| TestkitError::io(ctx("creating"), e))
}

/// Pick free loopback ports by binding port 0 (all listeners open at once, so no duplicates),
/// then release them. Someone may grab one before the JVM does; `start` retries on that.
fn allocate_ports(nodes: usize, tls: bool) -> Result<Vec<Ports>, TestkitError> {
    let per_node = if tls { 4 } else { 3 };
    let mut held = Vec::with_capacity(nodes * per_node);
    let mut ports = Vec::with_capacity(nodes * per_node);
    for _ in 0..nodes * per_node {
        let l = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| TestkitError::io("binding a free port", e))?;
        let port = l
            .local_addr()
            .map_err(|e| TestkitError::io("reading a bound port", e))?
            .port();
        held.push(l);
        ports.push(port);
    }
    drop(held);
    Ok(ports
        .chunks(per_node)
        .enumerate()
        .map(|(i, c)| Ports {
            id: i + 1,
            client: c.first().copied().unwrap_or_default(),
            quorum: c.get(1).copied().unwrap_or_default(),
            election: c.get(2).copied().unwrap_or_default(),
            secure: c.get(3).copied(),
        })
        .collect())
}

fn is_bind_conflict(log_tail: &str) -> bool {
    log_tail.contains("Address already in use") || log_tail.contains("BindException")
}

/// `server.<id>=127.0.0.1:<quorum>:<election>:participant;127.0.0.1:<client>`.
fn server_line(p: &Ports) -> String {
    format!(
        "server.{}=127.0.0.1:{}:{}:participant;127.0.0.1:{}",
        p.id, p.quorum, p.election, p.client
    )
}

pub(crate) fn render_config(
    node: &Node,
    all: &[Ports],
    s: &Settings,
    tls: Option<&TlsMaterial>,
) -> String {
    let mut c = String::new();
    let tick = s.tick.as_millis();
    let _ = writeln!(c, "# written by zk-testkit");
    let _ = writeln!(c, "tickTime={tick}");
    let _ = writeln!(c, "initLimit=10");
    let _ = writeln!(c, "syncLimit=5");
    let _ = writeln!(c, "dataDir={}", node.dir.join("data").display());
    if !s.dynamic {
        let _ = writeln!(c, "clientPort={}", node.ports.client);
        let _ = writeln!(c, "clientPortAddress=127.0.0.1");
    }
    let _ = writeln!(c, "admin.enableServer=false");
    let _ = writeln!(c, "4lw.commands.whitelist=*");
    let _ = writeln!(c, "preAllocSize=4096");
    if !s.force_sync {
        let _ = writeln!(c, "forceSync=no");
    }
    if let Some(t) = s.max_session {
        let _ = writeln!(c, "maxSessionTimeout={}", t.as_millis());
    }
    if let Some(t) = s.min_session {
        let _ = writeln!(c, "minSessionTimeout={}", t.as_millis());
    }
    if s.read_only {
        let _ = writeln!(c, "localSessionsEnabled=true");
        let _ = writeln!(c, "localSessionsUpgradingEnabled=true");
    }
    if let (Some(auth), Some(tls), Some(port)) = (s.client_auth, tls, node.ports.secure) {
        let _ = writeln!(c, "secureClientPort={port}");
        let _ = writeln!(c, "secureClientPortAddress=127.0.0.1");
        let _ = writeln!(
            c,
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
        );
        let _ = writeln!(
            c,
            "ssl.keyStore.location={}",
            tls.node_keystore_path(node.id()).display()
        );
        let _ = writeln!(c, "ssl.keyStore.type=PEM");
        let _ = writeln!(c, "ssl.trustStore.location={}", tls.ca_path().display());
        let _ = writeln!(c, "ssl.trustStore.type=PEM");
        let _ = writeln!(c, "ssl.clientAuth={}", auth.as_config_value());
    }
    if s.dynamic {
        for p in all {
            let _ = writeln!(c, "{}", server_line(p));
        }
    } else if all.len() > 1 {
        for (i, p) in all.iter().enumerate() {
            let _ = writeln!(c, "server.{}=127.0.0.1:{}:{}", i + 1, p.quorum, p.election);
        }
    }
    for (k, v) in &s.extra_config {
        let _ = writeln!(c, "{k}={v}");
    }
    c
}

fn write_node_files(
    node: &Node,
    all: &[Ports],
    s: &Settings,
    tls: Option<&TlsMaterial>,
) -> Result<(), TestkitError> {
    let w = |p: PathBuf, body: String| {
        fs::write(&p, body).map_err(|e| TestkitError::io(format!("writing {}", p.display()), e))
    };
    let data = node.dir.join("data");
    fs::create_dir_all(&data)
        .map_err(|e| TestkitError::io(format!("creating {}", data.display()), e))?;
    w(data.join("myid"), format!("{}\n", node.id()))?;
    if let Some(tls) = tls {
        tls.write_node_keystore(node.id())?;
    }
    w(node.config_path(), render_config(node, all, s, tls))?;
    let log = node.log_path();
    w(
        node.dir.join("log4j.properties"),
        format!(
            "log4j.rootLogger=INFO, F\n\
             log4j.appender.F=org.apache.log4j.FileAppender\n\
             log4j.appender.F.File={}\n\
             log4j.appender.F.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.F.layout.ConversionPattern=%d{{ISO8601}} - %-5p [%t:%C{{1}}@%L] - %m%n\n",
            log.display()
        ),
    )?;
    w(
        node.dir.join("logback.xml"),
        format!(
            "<configuration>\n  <appender name=\"F\" class=\"ch.qos.logback.core.FileAppender\">\n    \
             <file>{}</file>\n    <encoder><pattern>%d{{ISO8601}} - %-5p [%t:%C{{1}}@%L] - %m%n</pattern></encoder>\n  \
             </appender>\n  <root level=\"INFO\"><appender-ref ref=\"F\"/></root>\n</configuration>\n",
            log.display()
        ),
    )
}

/// A running ZooKeeper ensemble on loopback.
///
/// Dropping it SIGKILLs every JVM, stops the proxies and removes the temp dir (set
/// `ZK_TESTKIT_KEEP=1` to keep it for post-mortems). An ensemble obtained with
/// [`Ensemble::attach`] is not owned: dropping it leaves the servers running.
#[derive(Debug)]
pub struct Ensemble {
    pub(crate) nodes: Vec<Node>,
    pub(crate) proxies: Vec<FaultProxy>,
    pub(crate) tls_proxies: Vec<FaultProxy>,
    pub(crate) root: PathBuf,
    pub(crate) tempdir: Option<tempfile::TempDir>,
    pub(crate) tls: Option<TlsMaterial>,
    pub(crate) settings: Settings,
    /// Whether dropping kills the servers.
    pub(crate) owned: bool,
    /// Keep the directory on drop (set after a failed start so logs survive).
    pub(crate) keep_dir: bool,
    pub(crate) watchdog: Mutex<Option<Child>>,
}

impl Ensemble {
    /// Start `nodes` servers with the defaults (tick 200 ms, max session timeout 20 ticks).
    pub async fn start(nodes: usize) -> Result<Self, TestkitError> {
        Self::builder().nodes(nodes).start().await
    }

    /// What the examples and demos connect to: the connection string in `ZK_CONNECT` when it
    /// is set (and no ensemble), else a local `nodes`-node ensemble started here (it lives as
    /// long as the caller keeps the returned value).
    ///
    /// # Errors
    /// As [`Ensemble::start`].
    pub async fn from_env_or_start(nodes: usize) -> Result<(String, Option<Self>), TestkitError> {
        if let Ok(cs) = std::env::var("ZK_CONNECT") {
            return Ok((cs, None));
        }
        println!("ZK_CONNECT not set: starting a local {nodes}-node ensemble (zk-testkit)");
        let ens = Self::start(nodes).await?;
        Ok((ens.connect_string(), Some(ens)))
    }

    /// A builder with the defaults.
    pub fn builder() -> EnsembleBuilder {
        EnsembleBuilder::default()
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,…`, through the proxies when they are enabled.
    pub fn connect_string(&self) -> String {
        if self.proxies.is_empty() {
            self.direct_connect_string()
        } else {
            join(self.proxies.iter().map(FaultProxy::addr))
        }
    }

    /// The plain client ports, bypassing any proxies.
    pub fn direct_connect_string(&self) -> String {
        join(self.nodes.iter().map(Node::client_addr))
    }

    /// The TLS client ports, when TLS is enabled; through the TLS proxies when proxies are
    /// enabled (they listen on 127.0.0.1 too, so the server certificate's IP SAN matches).
    pub fn tls_connect_string(&self) -> Option<String> {
        if self.tls_proxies.is_empty() {
            self.direct_tls_connect_string()
        } else {
            Some(join(self.tls_proxies.iter().map(FaultProxy::addr)))
        }
    }

    /// The TLS client ports, bypassing any proxies.
    pub fn direct_tls_connect_string(&self) -> Option<String> {
        let addrs: Option<Vec<SocketAddr>> = self.nodes.iter().map(Node::secure_addr).collect();
        addrs.map(|a| join(a.into_iter()))
    }

    /// All nodes, index 0 first (`myid` = index + 1).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `i` (0-based).
    ///
    /// # Panics
    /// If `i >= nodes().len()`, like slice indexing; see [`Ensemble::get_node`].
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Node `i` (0-based), if it exists.
    pub fn get_node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i)
    }

    /// The ensemble's directory (configs, data, logs, TLS files).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The `srvr` mode of every node (`None` for nodes that are down, frozen or not serving).
    pub async fn modes(&self) -> Vec<Option<String>> {
        let mut modes = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            modes.push(n.mode().await);
        }
        modes
    }

    /// The node whose `srvr` says `Mode: leader` (or `standalone` for a single node).
    pub async fn leader(&self) -> Option<usize> {
        self.modes()
            .await
            .iter()
            .position(|m| matches!(m.as_deref(), Some("leader" | "standalone")))
    }

    /// The nodes whose `srvr` says `Mode: follower`.
    pub async fn followers(&self) -> Vec<usize> {
        self.modes()
            .await
            .iter()
            .enumerate()
            .filter(|(_, m)| m.as_deref() == Some("follower"))
            .map(|(i, _)| i)
            .collect()
    }

    /// Poll until some node leads; returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<usize, TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if Instant::now() >= deadline {
                return Err(self.not_serving_error(timeout, "no leader elected".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until every live node (running and not frozen) answers `srvr` with a `Mode:`, and
    /// no two of them claim to lead.
    ///
    /// A leader that was frozen and is thawed after the others elected a new one still says
    /// `Mode: leader` (and accepts sessions) until it notices, about a tick later, that no
    /// quorum follows it; an ensemble is not healed before it steps down.
    pub async fn wait_serving(&self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            let mut leaders = Vec::new();
            for n in &self.nodes {
                if !n.is_live() || !n.is_member() {
                    continue;
                }
                match n.mode().await.as_deref() {
                    None => missing.push(n.index),
                    Some("leader") => leaders.push(n.index),
                    Some(_) => {}
                }
            }
            if missing.is_empty() && leaders.len() <= 1 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let reason = if missing.is_empty() {
                    format!("nodes {leaders:?} all say they lead")
                } else {
                    format!("nodes {missing:?} not serving")
                };
                return Err(self.not_serving_error(timeout, reason));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Like [`Ensemble::wait_serving`], but a live node that is still not serving after
    /// `stuck_after` is restarted (kill −9, start again) and waited for once more; returns
    /// the indexes restarted that way.
    ///
    /// Undoes every fault: fault proxies back to pass (no added latency), frozen nodes thawed,
    /// dead nodes restarted; then waits until every node serves (restarting a node that never
    /// rejoins, see [`Ensemble::wait_serving_restarting_stuck`]) with exactly one leader.
    /// Returns the nodes it restarted because they were dead. What fault-injection tests and
    /// benchmarks run between scenarios.
    ///
    /// # Errors
    /// Errors from thawing or restarting a node; [`TestkitError::StartTimeout`] when the
    /// ensemble does not serve with one leader within 90 s (plus 30 s for the leader).
    pub async fn heal(&self) -> Result<Vec<usize>, TestkitError> {
        for p in self.proxies() {
            p.set_mode(crate::ProxyMode::Pass);
            p.set_latency(Duration::ZERO, Duration::ZERO);
        }
        let mut restarted = Vec::new();
        for n in self.nodes.iter().filter(|n| n.is_member()) {
            if n.is_frozen() {
                n.try_thaw()?;
            } else if !n.is_running() {
                n.restart().await?;
                restarted.push(n.index);
            }
        }
        self.wait_serving_restarting_stuck(Duration::from_secs(30), Duration::from_secs(90))
            .await?;
        self.wait_for_leader(Duration::from_secs(30)).await?;
        Ok(restarted)
    }

    /// The `server.<id>=…;127.0.0.1:<client>` line of node `i`: what a `reconfig` adding it
    /// names (see [`EnsembleBuilder::dynamic`]).
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn server_line(&self, i: usize) -> String {
        server_line(&self.nodes[i].ports)
    }

    /// Starts spare node `i` (prepared by [`EnsembleBuilder::dynamic`]) and waits until it
    /// serves as a learner of the ensemble; the test then adds it with a `reconfig` naming
    /// [`Ensemble::server_line`]. From now on the test kit waits for it and heals it.
    ///
    /// # Errors
    /// Errors from starting the JVM; [`TestkitError::StartTimeout`] after 60 s.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub async fn start_spare(&self, i: usize) -> Result<(), TestkitError> {
        let node = &self.nodes[i];
        node.set_member(true);
        node.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !node.is_serving().await {
            if Instant::now() >= deadline {
                return Err(self.not_serving_error(
                    Duration::from_secs(60),
                    format!("spare node {i} not serving"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stops node `i` for good, after the test removed it with a `reconfig`: it is no longer
    /// waited for or healed.
    ///
    /// # Errors
    /// If it cannot be killed.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn retire(&self, i: usize) -> Result<(), TestkitError> {
        let node = &self.nodes[i];
        node.set_member(false);
        if node.is_frozen() {
            node.try_thaw()?;
        }
        if node.is_running() {
            node.kill()?;
        }
        Ok(())
    }

    /// A ZooKeeper 3.8 server restarted after `kill -9` occasionally never rejoins: it stays
    /// `LOOKING` and logs "Notification time out" while its peers, `LEADING`/`FOLLOWING`,
    /// keep receiving its votes — their answers go nowhere (seen here once in a few hundred
    /// restarts of the chaos suite). A second restart clears it. Fault-injection tests use
    /// this to heal the ensemble without mistaking that for a failure of the code under test.
    ///
    /// # Errors
    /// [`TestkitError::StartTimeout`] if the ensemble still does not serve within `timeout`
    /// after the restarts; errors from restarting a node.
    pub async fn wait_serving_restarting_stuck(
        &self,
        stuck_after: Duration,
        timeout: Duration,
    ) -> Result<Vec<usize>, TestkitError> {
        let deadline = Instant::now() + timeout;
        let mut restarted = Vec::new();
        loop {
            let wait = stuck_after.min(deadline.saturating_duration_since(Instant::now()));
            match self.wait_serving(wait).await {
                Ok(()) => return Ok(restarted),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            for n in self.nodes.iter().filter(|n| n.is_member()) {
                if n.is_live() && !n.is_serving().await {
                    tracing::warn!(
                        node = n.index,
                        "node not serving after {stuck_after:?}: restarting it"
                    );
                    n.restart().await?;
                    restarted.push(n.index);
                }
            }
        }
    }

    /// Start-up wait: like `wait_serving`, but a node that exits is an error at once.
    async fn wait_started(&self, deadline: Instant, limit: Duration) -> Result<(), TestkitError> {
        loop {
            for n in self.nodes.iter().filter(|n| n.is_member()) {
                if let Some(status) = n.exit_status() {
                    return Err(TestkitError::NodeExited {
                        node: n.index,
                        status,
                        logs: self.log_paths(),
                        tail: self.log_tails(),
                    });
                }
            }
            let mut missing = Vec::new();
            for n in self.nodes.iter().filter(|n| n.is_member()) {
                if !n.is_serving().await {
                    missing.push(n.index);
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.not_serving_error(limit, format!("nodes {missing:?} not serving")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn not_serving_error(&self, waited: Duration, reason: String) -> TestkitError {
        TestkitError::StartTimeout {
            waited,
            reason,
            logs: self.log_paths(),
            tail: self.log_tails(),
        }
    }

    fn log_tails(&self) -> String {
        self.nodes.iter().map(|n| n.log_tail(12)).collect()
    }

    /// Send a four-letter word to node `node` directly (not through its proxy).
    pub async fn four_letter(&self, node: usize, cmd: &str) -> Result<String, TestkitError> {
        let n = self.nodes.get(node).ok_or(TestkitError::NoSuchNode {
            index: node,
            count: self.nodes.len(),
        })?;
        n.four_letter(cmd).await
    }

    /// How many of node `node`'s client connections belong to `session_id`, from its `cons`
    /// listing. ZooKeeper can keep two connections of one session when two handshakes for
    /// it overlap (two processes resuming the same saved session); this is how tests see it.
    ///
    /// # Errors
    /// As [`Ensemble::four_letter`].
    pub async fn session_connections(
        &self,
        node: usize,
        session_id: i64,
    ) -> Result<usize, TestkitError> {
        let cons = self.four_letter(node, "cons").await?;
        Ok(count_session_connections(&cons, session_id))
    }

    /// The node behind a client-visible address: its proxy, plain or TLS port.
    pub fn node_for_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.client_addr() == addr || n.secure_addr() == Some(addr))
            .or_else(|| self.proxies.iter().position(|p| p.addr() == addr))
            .or_else(|| self.tls_proxies.iter().position(|p| p.addr() == addr))
    }

    /// TLS material for clients, when TLS is enabled.
    pub fn tls(&self) -> Option<&TlsMaterial> {
        self.tls.as_ref()
    }

    /// The proxy in front of node `i`, when proxies are enabled.
    pub fn proxy(&self, i: usize) -> Option<&FaultProxy> {
        self.proxies.get(i)
    }

    /// All plain-port proxies (empty when disabled).
    pub fn proxies(&self) -> &[FaultProxy] {
        &self.proxies
    }

    /// The proxy in front of node `i`'s TLS port, when both TLS and proxies are enabled.
    pub fn tls_proxy(&self, i: usize) -> Option<&FaultProxy> {
        self.tls_proxies.get(i)
    }

    /// Every node's log file and stdout/stderr file, node by node.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .flat_map(|n| [n.log_path(), n.stdout_path()])
            .collect()
    }

    /// Kill every server and remove the ensemble's directory (also one given with
    /// [`EnsembleBuilder::dir`] or attached), honouring `ZK_TESTKIT_KEEP=1`.
    pub fn shutdown(mut self) -> Result<(), TestkitError> {
        self.proxies.clear();
        self.tls_proxies.clear();
        let mut first_err = None;
        for n in &self.nodes {
            if let Err(e) = n.kill() {
                first_err.get_or_insert(e);
            }
        }
        self.stop_watchdog();
        self.owned = false;
        if !keep_requested() {
            if let Some(t) = self.tempdir.take() {
                let _ = t.close();
            } else if self.root.join(crate::state::STATE_FILE).exists()
                || self.root.join("n1").exists()
            {
                let _ = fs::remove_dir_all(&self.root);
            }
        } else if let Some(t) = self.tempdir.take() {
            let _ = t.keep();
        }
        first_err.map_or(Ok(()), Err)
    }

    pub(crate) fn stop_watchdog(&self) {
        let mut guard = self
            .watchdog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut w) = guard.take() {
            process::kill_child(&mut w);
        }
    }
}

fn keep_requested() -> bool {
    std::env::var_os("ZK_TESTKIT_KEEP").is_some_and(|v| v != "0" && !v.is_empty())
}

fn join(addrs: impl Iterator<Item = SocketAddr>) -> String {
    addrs.map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        self.proxies.clear();
        self.tls_proxies.clear();
        for n in &self.nodes {
            if let Err(e) = n.kill() {
                tracing::error!(node = n.index, error = %e, "could not kill node on drop");
            }
        }
        self.stop_watchdog();
        if let Some(t) = self.tempdir.take() {
            if keep_requested() || self.keep_dir {
                let p = t.keep();
                tracing::info!(dir = %p.display(), "keeping ensemble directory");
            } else if let Err(e) = t.close() {
                tracing::warn!(error = %e, "could not remove ensemble directory");
            }
        }
    }
}

/// Lines of a `cons` answer whose `sid=0x…` is exactly `session_id`.
fn count_session_connections(cons: &str, session_id: i64) -> usize {
    let want = format!("{session_id:x}");
    cons.lines()
        .filter_map(|l| l.split_once("sid=0x"))
        .filter(|(_, rest)| {
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            hex.eq_ignore_ascii_case(&want)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_mode;

    #[test]
    fn ports_are_distinct() {
        let p = allocate_ports(3, true).unwrap();
        let mut all: Vec<u16> = p
            .iter()
            .flat_map(|p| [p.client, p.quorum, p.election, p.secure.unwrap()])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 12);
    }

    #[test]
    fn bind_conflict_detection() {
        assert!(is_bind_conflict(
            "java.net.BindException: Address already in use"
        ));
        assert!(!is_bind_conflict("all good"));
    }

    #[test]
    fn session_connections_are_counted_by_exact_id() {
        let cons = " /127.0.0.1:40100[1](queued=0,recved=3,sent=3,sid=0x100007a3b2c0000,lop=PING)\n \
                    /127.0.0.1:40102[1](queued=0,recved=1,sent=1,sid=0x100007a3b2c0000,lop=PING)\n \
                    /127.0.0.1:40104[1](queued=0,recved=1,sent=1,sid=0x100007a3b2c00001,lop=PING)\n \
                    /127.0.0.1:40106[0](queued=0,recved=1,sent=0)\n";
        assert_eq!(count_session_connections(cons, 0x0100_007a_3b2c_0000), 2);
        assert_eq!(count_session_connections(cons, 0x1), 0);
        assert_eq!(count_session_connections("", 0x0100_007a_3b2c_0000), 0);
    }

    #[test]
    fn mode_parsing() {
        let srvr = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(srvr), Some("follower"));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests"),
            None
        );
    }

    #[test]
    fn ensemble_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Ensemble>();
        assert_send_sync::<Node>();
        assert_send_sync::<FaultProxy>();
    }

    #[tokio::test]
    async fn start_blocking_refuses_inside_a_runtime() {
        let r = Ensemble::builder().nodes(1).start_blocking();
        assert!(matches!(r, Err(TestkitError::Config(_))));
    }

    #[test]
    fn rejects_bad_options() {
        assert!(Ensemble::builder().nodes(0).validate().is_err());
        assert!(Ensemble::builder().config("a=b", "c").validate().is_err());
        assert!(Ensemble::builder().nodes(3).validate().is_ok());
    }
}
