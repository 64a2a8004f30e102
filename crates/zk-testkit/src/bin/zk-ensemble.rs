//! `zk-ensemble`: start a local ZooKeeper ensemble in the background and break it by hand.
//!
//! ```text
//! zk-ensemble up [--nodes 3] [--tls] [--client-auth need|want|none] [--read-only]
//!                [--tick MS] [--max-session-timeout MS] [--dir DIR]
//! zk-ensemble status | connect [--tls] | down            [--dir DIR]
//! zk-ensemble kill N | stop N | freeze N | thaw N | restart N   [--dir DIR]
//! ```
//! `N` is the server id (1-based, as in `server.N`). `up` prints the connection string on stdout
//! (everything else goes to stderr), so `ZK=$(zk-ensemble up)` works. The ensemble lives in
//! `--dir`, else `$ZK_ENSEMBLE_DIR`, else `$XDG_RUNTIME_DIR/zk-ensemble`, else
//! `$TMPDIR/zk-ensemble`; its state file is `ensemble.state` there.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use zk_testkit::{ClientAuth, Ensemble, STATE_FILE, TestkitError, TlsOptions};

const USAGE: &str = "usage:
  zk-ensemble up [--nodes 3] [--tls] [--client-auth need|want|none] [--read-only]
                 [--tick MS] [--max-session-timeout MS] [--dir DIR]
  zk-ensemble status | connect [--tls] | down          [--dir DIR]
  zk-ensemble kill N | stop N | freeze N | thaw N | restart N   [--dir DIR]
N is the server id (1-based). `up` prints the connection string on stdout.";

/// A command-line error: bad usage (exit 2) or a failure (exit 1).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error(transparent)]
    Kit(#[from] TestkitError),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Default)]
struct Args {
    command: String,
    node: Option<usize>,
    nodes: usize,
    tls: bool,
    client_auth: ClientAuth,
    read_only: bool,
    tick_ms: Option<u64>,
    max_session_ms: Option<u64>,
    dir: Option<PathBuf>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, CliError> {
    let mut a = Args {
        nodes: 3,
        ..Args::default()
    };
    let mut positional = Vec::new();
    let value = |it: &mut dyn Iterator<Item = String>, flag: &str| {
        it.next()
            .ok_or_else(|| CliError::Usage(format!("{flag} needs a value")))
    };
    let number = |s: String, flag: &str| {
        s.parse::<u64>()
            .map_err(|_| CliError::Usage(format!("{flag}: {s:?} is not a number")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--nodes" | "-n" => {
                let v = number(value(&mut it, &arg)?, &arg)?;
                a.nodes =
                    usize::try_from(v).map_err(|_| CliError::Usage("--nodes too big".into()))?;
            }
            "--tls" => a.tls = true,
            "--client-auth" => {
                let v = value(&mut it, &arg)?;
                a.client_auth = match v.as_str() {
                    "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Err(CliError::Usage(format!("--client-auth: {v:?}"))),
                };
                a.tls = true;
            }
            "--read-only" => a.read_only = true,
            "--tick" => a.tick_ms = Some(number(value(&mut it, &arg)?, &arg)?),
            "--max-session-timeout" => {
                a.max_session_ms = Some(number(value(&mut it, &arg)?, &arg)?);
            }
            "--dir" => a.dir = Some(PathBuf::from(value(&mut it, &arg)?)),
            "-h" | "--help" | "help" => a.command = "help".into(),
            s if s.starts_with('-') => return Err(CliError::Usage(format!("unknown flag {s}"))),
            _ => positional.push(arg),
        }
    }
    let mut pos = positional.into_iter();
    if a.command.is_empty() {
        a.command = pos.next().unwrap_or_else(|| "help".into());
    }
    if let Some(n) = pos.next() {
        let id = n
            .parse::<usize>()
            .map_err(|_| CliError::Usage(format!("{n:?} is not a server id")))?;
        a.node = Some(id);
    }
    if let Some(extra) = pos.next() {
        return Err(CliError::Usage(format!("unexpected argument {extra:?}")));
    }
    Ok(a)
}

fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ZK_ENSEMBLE_DIR") {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir)
        .join("zk-ensemble")
}

fn attach(dir: &Path) -> Result<Ensemble, CliError> {
    if !dir.join(STATE_FILE).exists() {
        return Err(CliError::Other(format!(
            "no ensemble in {} (start one with `zk-ensemble up`)",
            dir.display()
        )));
    }
    Ok(Ensemble::attach(dir)?)
}

/// Map a 1-based server id to a node index.
fn index_of(ens: &Ensemble, id: Option<usize>) -> Result<usize, CliError> {
    let id = id.ok_or_else(|| CliError::Usage("which server? (1-based id)".into()))?;
    let count = ens.nodes().len();
    if id == 0 || id > count {
        return Err(CliError::Other(format!(
            "no server {id}: the ensemble has servers 1..={count}"
        )));
    }
    Ok(id - 1)
}

async fn up(a: &Args, dir: &Path) -> Result<(), CliError> {
    if dir.join(STATE_FILE).exists() {
        let old = Ensemble::attach(dir)?;
        if old.nodes().iter().any(zk_testkit::Node::is_running) {
            return Err(CliError::Other(format!(
                "an ensemble is already up in {} ({}); run `zk-ensemble down` first",
                dir.display(),
                old.connect_string()
            )));
        }
        old.shutdown()?; // stale: remove it
    }
    let mut b = Ensemble::builder()
        .nodes(a.nodes)
        .read_only(a.read_only)
        .dir(dir)
        .detached(true);
    if a.tls {
        b = b.tls(TlsOptions {
            client_auth: a.client_auth,
        });
    }
    if let Some(t) = a.tick_ms {
        b = b.tick_time(Duration::from_millis(t));
    }
    if let Some(t) = a.max_session_ms {
        b = b.max_session_timeout(Duration::from_millis(t));
    }
    eprintln!(
        "starting {} ZooKeeper server(s) in {} ...",
        a.nodes,
        dir.display()
    );
    let ens = b.start().await?;
    let connect = ens.connect_string();
    let tls = ens.tls_connect_string();
    let material = ens.tls().cloned();
    let leader = ens.leader().await;
    let state = ens.detach()?;
    if let Some(l) = leader {
        eprintln!("leader: server {}", l + 1);
    }
    if let (Some(t), Some(m)) = (tls, material) {
        eprintln!("tls: {t}");
        eprintln!(
            "ca: {}\nclient cert: {}\nclient key: {}",
            m.ca_path().display(),
            m.client_cert_path().display(),
            m.client_key_path().display()
        );
    }
    eprintln!("state: {}", state.display());
    println!("{connect}");
    Ok(())
}

async fn status(dir: &Path) -> Result<(), CliError> {
    let ens = attach(dir)?;
    println!("dir: {}", dir.display());
    println!("connect: {}", ens.connect_string());
    if let Some(t) = ens.tls_connect_string() {
        println!("tls: {t}");
    }
    for n in ens.nodes() {
        let pid = n.pid().map_or_else(|| "-".to_owned(), |p| p.to_string());
        let (state, mode) = if n.pid().is_none() {
            ("down", "-".to_owned())
        } else if n.is_frozen() {
            ("frozen", "-".to_owned())
        } else {
            let mode = n.mode().await.unwrap_or_else(|| "not serving".to_owned());
            ("running", mode)
        };
        println!(
            "server {}  pid {pid:<8} {state:<8} {mode:<12} {}",
            n.id(),
            n.client_addr()
        );
    }
    Ok(())
}

async fn run(a: Args) -> Result<(), CliError> {
    let dir = a.dir.clone().unwrap_or_else(default_dir);
    match a.command.as_str() {
        "help" => {
            println!("{USAGE}");
            Ok(())
        }
        "up" => up(&a, &dir).await,
        "status" => status(&dir).await,
        "connect" => {
            let ens = attach(&dir)?;
            let s = if a.tls {
                ens.tls_connect_string()
                    .ok_or_else(|| CliError::Other("the ensemble has no TLS".into()))?
            } else {
                ens.connect_string()
            };
            println!("{s}");
            Ok(())
        }
        "down" => {
            let ens = attach(&dir)?;
            ens.shutdown()?;
            eprintln!("ensemble in {} is down", dir.display());
            Ok(())
        }
        "kill" | "stop" | "freeze" | "thaw" | "restart" => {
            let ens = attach(&dir)?;
            let i = index_of(&ens, a.node)?;
            let node = ens.node(i);
            match a.command.as_str() {
                "kill" => node.kill()?,
                "stop" => node.try_stop().await?,
                "freeze" => node.try_freeze()?,
                "thaw" => node.try_thaw()?,
                _ => {
                    node.restart().await?;
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    while !node.is_serving().await && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    match node.mode().await {
                        Some(m) => eprintln!("server {} serving as {m}", node.id()),
                        None => eprintln!("server {} started but not serving yet", node.id()),
                    }
                }
            }
            ens.save_state()?;
            eprintln!("{} server {}: done", a.command, node.id());
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown command {other:?}"))),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("zk-ensemble: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zk-ensemble: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ CliError::Usage(_)) => {
            eprintln!("zk-ensemble: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("zk-ensemble: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, CliError> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses_commands_and_flags() {
        let a = parse("up --nodes 5 --client-auth want --read-only --tick 100 --dir /x").unwrap();
        assert_eq!(a.command, "up");
        assert_eq!(a.nodes, 5);
        assert!(a.tls && a.read_only);
        assert_eq!(a.client_auth, ClientAuth::Want);
        assert_eq!(a.tick_ms, Some(100));
        assert_eq!(a.dir, Some(PathBuf::from("/x")));
        let a = parse("kill 2").unwrap();
        assert_eq!((a.command.as_str(), a.node), ("kill", Some(2)));
        assert_eq!(parse("").unwrap().command, "help");
    }

    #[test]
    fn rejects_bad_usage() {
        for bad in [
            "up --nodes",
            "up --nodes x",
            "up --bogus",
            "kill x",
            "kill 1 2",
            "up --client-auth maybe",
        ] {
            assert!(matches!(parse(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }
}
