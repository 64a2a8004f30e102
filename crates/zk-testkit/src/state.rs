//! Plain-text state files: how `zk-ensemble` finds an ensemble started by an earlier
//! invocation ([`Ensemble::detach`] writes one, [`Ensemble::attach`] reads it).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::ensemble::{Ensemble, Settings};
use crate::error::TestkitError;
use crate::node::{Launch, Node, Ports};
use crate::process;
use crate::tls::{ClientAuth, TlsMaterial};

/// Name of the state file inside an ensemble directory.
pub const STATE_FILE: &str = "ensemble.state";
const MAGIC: &str = "zk-ensemble-state 1";

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| d.as_millis().to_string())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

impl Ensemble {
    /// Path of this ensemble's state file.
    pub fn state_path(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    /// Write the state file (pids, ports, settings) so a later process can [`Ensemble::attach`].
    pub fn save_state(&self) -> Result<PathBuf, TestkitError> {
        let s = &self.settings;
        let mut t = String::new();
        let _ = writeln!(t, "{MAGIC}");
        let _ = writeln!(t, "root={}", self.root.display());
        let _ = writeln!(t, "tick_ms={}", s.tick.as_millis());
        let _ = writeln!(t, "max_session_ms={}", opt_ms(s.max_session));
        let _ = writeln!(t, "min_session_ms={}", opt_ms(s.min_session));
        let _ = writeln!(t, "read_only={}", u8::from(s.read_only));
        let _ = writeln!(t, "force_sync={}", u8::from(s.force_sync));
        let _ = writeln!(
            t,
            "client_auth={}",
            s.client_auth.map_or("-", ClientAuth::as_config_value)
        );
        if let Some(n) = self.nodes.first() {
            let l = &n.launch;
            let _ = writeln!(t, "java={}", l.java.display());
            let _ = writeln!(t, "classpath={}", l.classpath.to_string_lossy());
            for f in &l.jvm_flags {
                let _ = writeln!(t, "jvm_flag={f}");
            }
        }
        for (k, v) in &s.extra_config {
            let _ = writeln!(t, "config={k}={v}");
        }
        for n in &self.nodes {
            let p = n.ports;
            let _ = writeln!(
                t,
                "node={} {} {} {} {} {}",
                n.index,
                opt(n.pid()),
                p.client,
                opt(p.secure),
                p.quorum,
                p.election
            );
        }
        let path = self.state_path();
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, t)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| TestkitError::io(format!("writing {}", path.display()), e))?;
        Ok(path)
    }

    /// Let the servers outlive this value (and this process): write the state file, stop the
    /// orphan watchdog, drop the pid-registry entries and keep the directory. Start the ensemble
    /// with [`crate::EnsembleBuilder::detached`] so the JVMs also escape terminal signals sent
    /// to this process group.
    pub fn detach(mut self) -> Result<PathBuf, TestkitError> {
        self.stop_watchdog();
        for n in &self.nodes {
            if let Some(r) = &n.launch.registry {
                r.forget(n.index);
            }
        }
        self.proxies.clear();
        self.tls_proxies.clear();
        self.owned = false;
        if let Some(t) = self.tempdir.take() {
            let _ = t.keep();
        }
        self.save_state()
    }

    /// Take control of an ensemble whose state file lives in `dir`. The result is not owned:
    /// dropping it leaves the servers running; call [`Ensemble::shutdown`] to end them.
    pub fn attach(dir: &Path) -> Result<Self, TestkitError> {
        let path = dir.join(STATE_FILE);
        let text = fs::read_to_string(&path)
            .map_err(|e| TestkitError::io(format!("reading {}", path.display()), e))?;
        let bad = |detail: String| TestkitError::State {
            path: path.clone(),
            detail,
        };
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("not a zk-ensemble state file".into()));
        }
        let mut root = None;
        let mut tick = None;
        let mut max_session = None;
        let mut min_session = None;
        let mut read_only = false;
        let mut force_sync = true;
        let mut client_auth = None;
        let mut java = None;
        let mut classpath = None;
        let mut jvm_flags = Vec::new();
        let mut extra_config = Vec::new();
        let mut node_rows = Vec::new();
        let ms = |v: &str| -> Result<Option<Duration>, TestkitError> {
            if v == "-" {
                return Ok(None);
            }
            v.parse()
                .map(|m| Some(Duration::from_millis(m)))
                .map_err(|_| bad(format!("bad duration {v:?}")))
        };
        for line in lines {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "root" => root = Some(PathBuf::from(v)),
                "tick_ms" => tick = ms(v)?,
                "max_session_ms" => max_session = ms(v)?,
                "min_session_ms" => min_session = ms(v)?,
                "read_only" => read_only = v == "1",
                "force_sync" => force_sync = v == "1",
                "client_auth" => client_auth = ClientAuth::parse(v),
                "java" => java = Some(PathBuf::from(v)),
                "classpath" => classpath = Some(v.into()),
                "jvm_flag" => jvm_flags.push(v.to_owned()),
                "config" => {
                    if let Some((a, b)) = v.split_once('=') {
                        extra_config.push((a.to_owned(), b.to_owned()));
                    }
                }
                "node" => node_rows.push(v.to_owned()),
                _ => {}
            }
        }
        let root = root.ok_or_else(|| bad("no root".into()))?;
        let launch = Launch {
            java: java.ok_or_else(|| bad("no java".into()))?,
            classpath: classpath.ok_or_else(|| bad("no classpath".into()))?,
            jvm_flags,
            detached: true,
            registry: None,
        };
        let mut nodes = Vec::new();
        for row in node_rows {
            let f: Vec<&str> = row.split_whitespace().collect();
            let [index, pid, client, secure, quorum, election] = f.as_slice() else {
                return Err(bad(format!("bad node line {row:?}")));
            };
            let num = |s: &str| -> Result<u16, TestkitError> {
                s.parse().map_err(|_| bad(format!("bad number {s:?}")))
            };
            let index: usize = index
                .parse()
                .map_err(|_| bad(format!("bad index {index:?}")))?;
            let ports = Ports {
                id: index + 1,
                client: num(client)?,
                secure: if *secure == "-" {
                    None
                } else {
                    Some(num(secure)?)
                },
                quorum: num(quorum)?,
                election: num(election)?,
            };
            let dir = root.join(format!("n{}", index + 1));
            let marker = dir.join("zoo.cfg").to_string_lossy().into_owned();
            // Only adopt a pid that is still one of our JVMs (pids are recycled).
            let pid = pid
                .parse::<u32>()
                .ok()
                .filter(|&p| process::cmdline_contains(p, &marker));
            nodes.push(Node::new(index, dir, ports, launch.clone(), pid));
        }
        let tls = match client_auth {
            Some(_) => Some(TlsMaterial::load(&root.join("tls"))?),
            None => None,
        };
        Ok(Self {
            nodes,
            proxies: Vec::new(),
            tls_proxies: Vec::new(),
            root,
            tempdir: None,
            tls,
            settings: Settings {
                tick: tick.unwrap_or(crate::ensemble::DEFAULT_TICK),
                max_session,
                min_session,
                read_only,
                client_auth,
                force_sync,
                extra_config,
                // An attached ensemble is only restarted, never reconfigured here.
                dynamic: false,
            },
            owned: false,
            keep_dir: true,
            watchdog: Mutex::new(None),
        })
    }
}
