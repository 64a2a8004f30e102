//! Replays the committed `session_core` fuzz corpus through the same entry point the fuzz
//! target uses (`zk_session_core::testing::session_ops`), so the stable toolchain checks the
//! session core's invariants on every `cargo test`; plus a deterministic pseudo-random sweep
//! of inputs so the invariants are exercised even without a corpus.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::Path;

/// Replays every file of `fuzz/corpus/<target>` through `run`; the number replayed.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()));
    let mut files = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            files += 1;
        }
    }
    eprintln!("{target}: replayed {files} corpus files");
    files
}

#[test]
fn replay_session_core_corpus() {
    assert!(replay("session_core", zk_session_core::testing::session_ops) > 0);
}

#[test]
fn replay_ensemble_sim_corpus() {
    assert!(replay("ensemble_sim", zk_session_core::testing::ensemble_ops) > 0);
}

/// xorshift64*: a fixed-seed stream of inputs, so the sweep is reproducible.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Runs `cases` pseudo-random inputs of up to `max_len` bytes through `run`.
fn sweep(seed: u64, cases: usize, max_len: u64, run: fn(&[u8])) {
    let mut state = seed;
    for case in 0..cases {
        let len = usize::try_from(next(&mut state) % max_len).unwrap();
        let data: Vec<u8> = (0..len)
            .map(|_| next(&mut state).to_le_bytes()[3])
            .collect();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            panic!("case {case} broke an invariant; input (hex): {hex}");
        }
    }
}

#[test]
fn random_operation_sequences_keep_the_invariants() {
    sweep(
        0x5eed_2181,
        3000,
        600,
        zk_session_core::testing::session_ops,
    );
}

#[test]
fn random_ensemble_faults_keep_the_invariants() {
    sweep(
        0x5eed_2182,
        300,
        400,
        zk_session_core::testing::ensemble_ops,
    );
}

/// Replays one input given as hex in `SESSION_FUZZ_HEX` with the core's logs on
/// (`RUST_LOG=trace`): for minimising a failure the sweep or the fuzzer found.
#[test]
fn replay_hex_from_env() {
    let Ok(hex) = std::env::var("SESSION_FUZZ_HEX") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    zk_session_core::testing::session_ops(&bytes);
}

/// Regressions the session-core fuzzer found, driven directly so they read as a story.
mod regressions {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use zk_connstr::{Host, HostSpec};
    use zk_proto::Record;
    use zk_session_core::{
        Action, ConnId, Session, SessionConfig, SessionState, StaticHostProvider,
    };

    /// A session connected to a scripted server; returns it and its connection.
    fn connected(now: Instant) -> (Session, ConnId) {
        let hosts = vec![HostSpec {
            host: Host::Ipv4(Ipv4Addr::LOCALHOST),
            port: 2181,
        }];
        let mut core = Session::new(
            SessionConfig::with_timeout(Duration::from_secs(4)),
            Box::new(StaticHostProvider::in_order(hosts)),
            now,
        );
        core.start(now);
        let conn = match core.poll_action() {
            Some(Action::Connect { conn, .. }) => conn,
            other => panic!("expected a connect, got {other:?}"),
        };
        core.handle_connected(now, conn);
        let _ = core.poll_transmit();
        let resp = zk_session_core::testing::connect_response(0x0100_0000_0000_0001, 4000, 1);
        let frame = zk_session_core::testing::frame(&resp.to_bytes());
        core.handle_data(now, conn, &frame);
        assert_eq!(core.state(), SessionState::Connected);
        while core.poll_event().is_some() {}
        while core.poll_action().is_some() {}
        (core, conn)
    }

    /// The user closes (closeSession in flight), then the server sends garbage: the session
    /// ends `Closed` and the core must tell the driver to close the connection.
    ///
    /// Found by `session_ops`: `conn_failed_towards` replaces the phase with `Waiting` before
    /// calling `finish` for `Phase::Closing`, so `finish` no longer sees the connection and
    /// emits no `Action::Close` — a terminal session that still owns a socket.
    #[test]
    fn protocol_error_while_closing_closes_the_connection() {
        let now = Instant::now();
        let (mut core, conn) = connected(now);
        core.close(now);
        let _ = core.poll_transmit();
        // A negative length prefix: a framing error.
        core.handle_data(now, conn, &[0xff, 0xff, 0xff, 0xf0]);
        assert_eq!(core.state(), SessionState::Closed);
        let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
        assert!(
            actions.contains(&Action::Close { conn }),
            "terminal without closing {conn:?}: {actions:?}"
        );
    }
}
