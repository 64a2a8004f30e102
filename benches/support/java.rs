//! The official Java client 3.8 (Debian's `libzookeeper-java`), driven through
//! `benches/java/ZkProbe.java`: compiled with `javac` into `target/bench-java/` at set-up and run
//! as a child process, one command per line on stdin, one reply line on stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use super::harness::{repo_dir, target_dir};

const JAR_DIR: &str = "/usr/share/java";

/// Compiles the probe if needed; returns the class path to run it with, or why it cannot run.
pub(crate) fn prepare() -> Result<String, String> {
    let zk = Path::new(JAR_DIR).join("zookeeper.jar");
    if !zk.exists() {
        return Err(format!(
            "{} not found (apt install libzookeeper-java)",
            zk.display()
        ));
    }
    let src = repo_dir().join("benches/java/ZkProbe.java");
    let out = target_dir().join("bench-java");
    let class = out.join("ZkProbe.class");
    let stale = match (std::fs::metadata(&src), std::fs::metadata(&class)) {
        (Ok(s), Ok(c)) => match (s.modified(), c.modified()) {
            (Ok(s), Ok(c)) => s > c,
            _ => true,
        },
        _ => true,
    };
    if stale {
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let status = Command::new("javac")
            .arg("-nowarn")
            .arg("-cp")
            .arg(&zk)
            .arg("-d")
            .arg(&out)
            .arg(&src)
            .status()
            .map_err(|e| format!("javac: {e}"))?;
        if !status.success() {
            return Err(format!("javac failed: {status}"));
        }
    }
    // zookeeper.jar's manifest Class-Path brings zookeeper-jute, netty and slf4j-api; slf4j-nop
    // silences the client's logging (as a quiet production logger would).
    let nop: PathBuf = Path::new(JAR_DIR).join("slf4j-nop.jar");
    Ok(format!(
        "{}:{}:{}",
        out.display(),
        zk.display(),
        nop.display()
    ))
}

/// The class path of the client over TLS: Netty's client socket needs `netty-codec` and
/// `netty-resolver` besides what `zookeeper.jar`'s manifest brings.
pub(crate) fn tls_classpath(classpath: &str) -> String {
    format!("{classpath}:{JAR_DIR}/netty-codec.jar:{JAR_DIR}/netty-resolver.jar")
}

/// System properties for the Java client over mutual TLS: the Netty client socket, the
/// secure port, a PEM key store (key then certificate in one file) and a PEM trust store.
pub(crate) fn tls_flags(keystore: &Path, truststore: &Path) -> Vec<String> {
    vec![
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".into(),
        "-Dzookeeper.client.secure=true".into(),
        format!("-Dzookeeper.ssl.keyStore.location={}", keystore.display()),
        "-Dzookeeper.ssl.keyStore.type=PEM".into(),
        format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            truststore.display()
        ),
        "-Dzookeeper.ssl.trustStore.type=PEM".into(),
    ]
}

/// A running probe process.
pub(crate) struct JavaProbe {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl JavaProbe {
    /// Starts the JVM (default flags, as a user would run the client).
    pub(crate) fn spawn(classpath: &str) -> Result<Self, String> {
        Self::spawn_with(classpath, &[])
    }

    /// Starts the JVM with extra flags (system properties: a JAAS file for SASL, [`tls_flags`]).
    pub(crate) fn spawn_with(classpath: &str, flags: &[String]) -> Result<Self, String> {
        let mut child = Command::new("java")
            .arg("-Xss512k")
            .args(flags)
            .arg("-cp")
            .arg(classpath)
            .arg("ZkProbe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("java: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// The JVM's pid (for /proc CPU and RSS).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command and returns the reply's words (an `err …` reply is an error).
    pub(crate) fn cmd(&mut self, line: &str) -> Result<Vec<String>, String> {
        writeln!(self.stdin, "{line}").map_err(|e| format!("java stdin: {e}"))?;
        self.stdin.flush().map_err(|e| format!("java stdin: {e}"))?;
        let mut reply = String::new();
        let n = self
            .stdout
            .read_line(&mut reply)
            .map_err(|e| format!("java stdout: {e}"))?;
        if n == 0 {
            return Err("java probe exited".into());
        }
        let words: Vec<String> = reply.split_whitespace().map(str::to_owned).collect();
        if words.first().map(String::as_str) == Some("err") {
            return Err(format!("java probe: {}", reply.trim()));
        }
        Ok(words)
    }

    /// `mark`, returning the Rust instant matching the probe's mark (midpoint of the round trip).
    pub(crate) fn mark(&mut self) -> Result<Instant, String> {
        let t0 = Instant::now();
        self.cmd("mark")?;
        let t1 = Instant::now();
        Ok(t0 + (t1 - t0) / 2)
    }
}

impl Drop for JavaProbe {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + std::time::Duration::from_millis(500);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a reply word as a number (`-1` = absent).
pub(crate) fn num(words: &[String], i: usize) -> Result<i64, String> {
    words
        .get(i)
        .ok_or_else(|| format!("short reply {words:?}"))?
        .parse()
        .map_err(|e| format!("bad number in {words:?}: {e}"))
}
