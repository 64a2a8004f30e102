//! The failover's `tracing` spans, in a binary of its own: `tracing` caches per-callsite
//! interest process-wide, so a scoped subscriber beside tests running on other threads
//! without one can miss callsites (seen once in CI); alone here it cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::Arc;
use std::time::Duration;

use zk_session_core::SessionConfig;
use zk_session_core::testing::Sim;

fn cfg() -> SessionConfig {
    let mut c = SessionConfig::with_timeout(Duration::from_secs(6));
    c.rng_seed = Some(0x5eed_2181);
    c
}

fn connected(sim: &mut Sim) -> usize {
    sim.connect_now()
}

fn reconnect_pause(sim: &mut Sim, limit: Duration) -> Duration {
    sim.reconnect_pause(limit)
}

/// A `tracing` subscriber sees one `zk_failover` span per failover, closed when the session
/// is back, carrying where from, why, where to, how many attempts and the pause; each
/// attempt is a `zk_attempt` span inside it with the server and the outcome.
#[test]
fn a_failover_is_one_span_with_from_cause_to_attempts_and_pause() {
    use std::io::Write;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let (from, to) = tracing::subscriber::with_default(subscriber, || {
        let mut sim = Sim::new(3, cfg());
        let first = connected(&mut sim);
        sim.run_for(Duration::from_secs(1));
        sim.crash(first);
        reconnect_pause(&mut sim, Duration::from_secs(1));
        (sim.hosts[first].addr, sim.core.server().unwrap())
    });
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("zk_failover{") && l.contains("close"))
        .unwrap_or_else(|| panic!("no closed failover span in:\n{out}"));
    for field in [
        format!("from={from}"),
        "cause=\"connection_lost\"".to_owned(),
        format!("to={to}"),
        "attempts=1".to_owned(),
        "pause_ms=".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} missing from {line}");
    }
    assert!(
        out.lines().any(|l| l.contains("zk_failover{")
            && l.contains(&format!("zk_attempt{{server={to} outcome=\"ok\"}}"))),
        "no attempt span inside the failover span:\n{out}"
    );
}
