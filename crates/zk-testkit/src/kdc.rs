//! A throwaway MIT Kerberos KDC (Debian's `krb5-kdc`) for the SASL/GSSAPI tests.
//!
//! Everything lives in a temp dir of its own: the KDC's database and stash (`kdb5_util
//! create`), `kdc.conf` (through `KRB5_KDC_PROFILE`), a `krb5.conf` for clients and servers
//! (through `KRB5_CONFIG` and `-Djava.security.krb5.conf`), the principals' keytabs
//! (`kadmin.local`) and the log. Nothing is written outside it. `krb5kdc` runs in the
//! foreground on a free loopback port (UDP and TCP); it is killed on drop, and a tiny `/bin/sh`
//! watchdog kills it if the test process dies without dropping it (`SIGKILL`, `exit`).
//!
//! Principals: the servers' `zookeeper/localhost@EXAMPLE.COM` (keytab [`Kdc::server_keytab`]),
//! a client `client@EXAMPLE.COM` with a keytab ([`Kdc::client_keytab`]) and a password
//! ([`Kdc::CLIENT_PASSWORD`]). `krb5.conf` turns off DNS canonicalisation and reverse lookups,
//! so the server principal of host `localhost` is `zookeeper/localhost`, and makes every
//! client talk TCP to the KDC.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::TestkitError;

/// The realm of every test KDC.
pub const REALM: &str = "EXAMPLE.COM";

/// A running test KDC. See the module docs.
#[derive(Debug)]
pub struct Kdc {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    watchdog: Option<Child>,
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> TestkitError + '_ {
    move |e| TestkitError::io(context, e)
}

/// The Debian paths of the KDC's tools (`krb5-kdc`, `krb5-admin-server`).
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// Whether the KDC's tools are installed (Debian's `krb5-kdc` and `krb5-admin-server`).
#[must_use]
pub fn kdc_available() -> bool {
    ["krb5kdc", "kdb5_util", "kadmin.local"]
        .iter()
        .all(|t| tool(t).is_file())
}

impl Kdc {
    /// The client principal's password.
    pub const CLIENT_PASSWORD: &'static str = "client-secret";
    /// The client principal.
    pub const CLIENT: &'static str = "client@EXAMPLE.COM";

    /// Creates the realm's database, the principals and keytabs, and starts `krb5kdc`.
    ///
    /// # Errors
    /// When a tool is missing or fails, or the KDC does not listen within 10 s.
    pub fn start() -> Result<Self, TestkitError> {
        if !kdc_available() {
            return Err(TestkitError::Config(
                "krb5kdc, kdb5_util or kadmin.local not found: install Debian's krb5-kdc and \
                 krb5-admin-server"
                    .into(),
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("zk-testkit-kdc-")
            .tempdir()
            .map_err(io("creating the KDC's temp dir"))?;
        let port = free_port()?;
        let mut kdc = Self {
            dir,
            port,
            child: None,
            watchdog: None,
        };
        kdc.write_configs()?;
        kdc.run(
            "kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "zk-testkit-master"],
        )?;
        kdc.admin("addprinc -randkey zookeeper/localhost")?;
        kdc.admin(&format!("addprinc -pw {} client", Self::CLIENT_PASSWORD))?;
        let server_kt = kdc.server_keytab();
        kdc.admin(&format!(
            "ktadd -k {} zookeeper/localhost",
            server_kt.display()
        ))?;
        let client_kt = kdc.client_keytab();
        // -norandkey keeps the password valid beside the keytab.
        kdc.admin(&format!(
            "ktadd -k {} -norandkey client",
            client_kt.display()
        ))?;
        kdc.start_daemon()?;
        Ok(kdc)
    }

    /// The KDC's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port the KDC listens on (UDP and TCP, 127.0.0.1).
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The `krb5.conf` for clients and servers.
    #[must_use]
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The servers' principal, `zookeeper/localhost@EXAMPLE.COM`.
    #[must_use]
    pub fn server_principal(&self) -> String {
        format!("zookeeper/localhost@{REALM}")
    }

    /// The servers' keytab.
    #[must_use]
    pub fn server_keytab(&self) -> PathBuf {
        self.dir.path().join("server.keytab")
    }

    /// The client's keytab.
    #[must_use]
    pub fn client_keytab(&self) -> PathBuf {
        self.dir.path().join("client.keytab")
    }

    /// The environment a Kerberos client of this KDC reads (MIT krb5 takes its settings from
    /// there, as every Kerberos program does): `KRB5_CONFIG` (this KDC's `krb5.conf`),
    /// `KRB5_CLIENT_KTNAME` (the client principal's keytab) and `KRB5CCNAME` (a `DIR:` ticket
    /// cache collection in the KDC's directory, created here, so several principals' tickets
    /// live side by side). Set it before anything in the process calls into krb5.
    ///
    /// # Errors
    /// When the cache directory cannot be created.
    pub fn client_env(&self) -> Result<Vec<(&'static str, String)>, TestkitError> {
        let ccache = self.ccache_dir();
        std::fs::create_dir_all(&ccache).map_err(io("creating the ticket cache directory"))?;
        Ok(vec![
            ("KRB5_CONFIG", self.krb5_conf().display().to_string()),
            (
                "KRB5_CLIENT_KTNAME",
                self.client_keytab().display().to_string(),
            ),
            ("KRB5CCNAME", self.ccache()),
        ])
    }

    /// The client's ticket cache collection (`DIR:…`, see [`Kdc::client_env`]).
    #[must_use]
    pub fn ccache(&self) -> String {
        format!("DIR:{}", self.ccache_dir().display())
    }

    fn ccache_dir(&self) -> PathBuf {
        self.dir.path().join("ccache")
    }

    /// Adds a principal with a password (e.g. a second client).
    ///
    /// # Errors
    /// When `kadmin.local` fails.
    pub fn add_principal(&self, name: &str, password: &str) -> Result<(), TestkitError> {
        self.admin(&format!("addprinc -pw {password} {name}"))
    }

    /// Writes a keytab for `principal` (keeping its password valid).
    ///
    /// # Errors
    /// When `kadmin.local` fails.
    pub fn keytab(&self, principal: &str, path: &Path) -> Result<(), TestkitError> {
        self.admin(&format!(
            "ktadd -k {} -norandkey {principal}",
            path.display()
        ))
    }

    /// Obtains a ticket-granting ticket for `principal` from `keytab` into the credential
    /// cache `ccache` (e.g. `FILE:/tmp/x` or `DIR:/tmp/dir`) with `kinit` (Debian's
    /// `krb5-user`), valid for `lifetime` (default: the realm's maximum).
    ///
    /// # Errors
    /// When `kinit` is missing or fails.
    pub fn kinit(
        &self,
        principal: &str,
        keytab: &Path,
        ccache: &str,
        lifetime: Option<Duration>,
    ) -> Result<(), TestkitError> {
        let mut args = vec![
            "-k".to_owned(),
            "-t".to_owned(),
            keytab.display().to_string(),
            "-c".to_owned(),
            ccache.to_owned(),
        ];
        if let Some(l) = lifetime {
            args.push("-l".to_owned());
            args.push(format!("{}s", l.as_secs().max(1)));
        }
        args.push(principal.to_owned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("kinit", &refs)
    }

    /// Whether `krb5kdc` is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills `krb5kdc` (the database stays: [`Kdc::restart`] brings it back).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// Starts `krb5kdc` again after [`Kdc::stop`].
    ///
    /// # Errors
    /// As [`Kdc::start`].
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        if self.child.is_none() {
            self.start_daemon()?;
        }
        Ok(())
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf"))
            .env(
                "KRB5CCNAME",
                format!("FILE:{}", self.dir.path().join("admin.ccache").display()),
            );
    }

    fn write_configs(&self) -> Result<(), TestkitError> {
        let d = self.dir.path().display();
        let port = self.port;
        let kdc_conf = format!(
            "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n kdc_listen = 127.0.0.1:{port}\n \
             kdc_tcp_listen = 127.0.0.1:{port}\n\n[realms]\n {REALM} = {{\n  database_name = {d}/principal\n  \
             key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = 10h\n  \
             max_renewable_life = 10h\n  supported_enctypes = aes256-cts-hmac-sha1-96:normal \
             aes128-cts-hmac-sha1-96:normal\n }}\n\n[logging]\n kdc = FILE:{d}/kdc.log\n \
             admin_server = FILE:{d}/kadmin.log\n default = FILE:{d}/krb5lib.log\n"
        );
        let krb5_conf = format!(
            "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n \
             dns_lookup_kdc = false\n dns_canonicalize_hostname = false\n rdns = false\n \
             udp_preference_limit = 1\n ticket_lifetime = 10h\n forwardable = false\n \
             default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96\n \
             default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96\n \
             permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96\n \
             kdc_timeout = 2000\n max_retries = 1\n clockskew = 2\n\n\
             [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\n\
             [domain_realm]\n localhost = {REALM}\n .localhost = {REALM}\n"
        );
        std::fs::write(self.dir.path().join("kdc.conf"), kdc_conf)
            .map_err(io("writing kdc.conf"))?;
        std::fs::write(self.krb5_conf(), krb5_conf).map_err(io("writing krb5.conf"))?;
        std::fs::write(self.dir.path().join("kadm5.acl"), "").map_err(io("writing kadm5.acl"))?;
        Ok(())
    }

    fn run(&self, name: &str, args: &[&str]) -> Result<(), TestkitError> {
        let mut cmd = Command::new(tool(name));
        cmd.args(args).stdin(Stdio::null());
        self.env(&mut cmd);
        let out = cmd.output().map_err(io("running a Kerberos tool"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(TestkitError::Config(format!(
                "{name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn admin(&self, query: &str) -> Result<(), TestkitError> {
        self.run("kadmin.local", &["-r", REALM, "-q", query])
    }

    fn start_daemon(&mut self) -> Result<(), TestkitError> {
        let mut cmd = Command::new(tool("krb5kdc"));
        cmd.args(["-n", "-r", REALM])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.env(&mut cmd);
        let child = cmd.spawn().map_err(io("starting krb5kdc"))?;
        let pid = child.id();
        self.child = Some(child);
        // The orphan watchdog: kills the KDC once this process is gone.
        // A KDC kept in a `static` is never dropped: the watchdog also removes its directory.
        const SCRIPT: &str = r#"owner=$1; kdc=$2; dir=$3
while [ -e "/proc/$owner" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$owner/status" 2>/dev/null; do
  [ -e "/proc/$kdc" ] || exit 0
  sleep 0.5
done
kill -s KILL "$kdc" 2>/dev/null
case "$dir" in */zk-testkit-kdc-*) rm -rf -- "$dir" ;; esac"#;
        self.watchdog = Command::new("/bin/sh")
            .args(["-c", SCRIPT, "zk-testkit-kdc-watchdog"])
            .arg(std::process::id().to_string())
            .arg(pid.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200))
                .is_ok()
            {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(TestkitError::Config(format!(
                    "krb5kdc exited with {status}; see {}",
                    self.dir.path().join("kdc.log").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(TestkitError::Config(
            "krb5kdc did not listen within 10 s".into(),
        ))
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1.
fn free_port() -> Result<u16, TestkitError> {
    for _ in 0..50 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("finding a port"))?;
        let port = tcp.local_addr().map_err(io("finding a port"))?.port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(TestkitError::Config("no free port for the KDC".into()))
}
