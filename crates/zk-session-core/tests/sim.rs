//! Failover scenarios for the session core, simulated in virtual time (no sockets, no
//! sleeps). Each scenario is reproducible; the harness (`zk_session_core::testing`, the
//! same simulated ensemble the `ensemble_sim` fuzz target drives) checks the core's
//! invariants on every step.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use zk_connstr::{Host, HostSpec};
use zk_proto::{ErrorCode, OpCode};
use zk_session_core::testing::{Mode, Sim, host_spec};
use zk_session_core::{
    AdaptiveDetector, ExpiredBy, Request, RequestError, SavedSession, SessionConfig, SessionState,
    SharedHosts, StaticHostProvider,
};

const T: Duration = Duration::from_secs(6);

/// Every scenario is reproducible: a fixed seed unless the test varies it.
fn seeded(t: Duration) -> SessionConfig {
    let mut c = SessionConfig::with_timeout(t);
    c.rng_seed = Some(0x5eed_2181);
    c
}

fn cfg() -> SessionConfig {
    seeded(T)
}

fn read() -> Request {
    Request::read(OpCode::GetData, Bytes::from_static(b"\0\0\0\x02/a\0"))
}

fn write() -> Request {
    Request::write(
        OpCode::SetData,
        Bytes::from_static(b"\0\0\0\x02/a\0\0\0\0\xff\xff\xff\xff"),
    )
}

fn connected(sim: &mut Sim) -> usize {
    sim.connect_now()
}

/// A connected session whose configuration shares `SharedHosts` with the test (which plays
/// the other sessions of the process); returns the simulation, the registry and the host.
fn connected_sharing() -> (Sim, Arc<SharedHosts>, usize) {
    let shared = Arc::new(SharedHosts::default());
    let mut c = cfg();
    c.shared = Some(Arc::clone(&shared));
    let mut sim = Sim::new(3, c);
    let first = connected(&mut sim);
    (sim, shared, first)
}

/// Runs until connected again and returns the pause measured by the core.
fn reconnect_pause(sim: &mut Sim, limit: Duration) -> Duration {
    sim.reconnect_pause(limit)
}

#[test]
fn crash_reconnects_to_another_host_without_sleeping() {
    for seed in 0..20 {
        let mut c = cfg();
        c.rng_seed = Some(seed);
        let mut sim = Sim::new(3, c);
        let first = connected(&mut sim);
        let id = sim.core.session_id();
        sim.run_for(Duration::from_secs(1));
        sim.crash(first);
        let pause = reconnect_pause(&mut sim, Duration::from_secs(1));
        // 15 ms of JVM teardown, then one connect + handshake (2 × 100 µs simulated latency).
        assert!(
            pause < Duration::from_millis(2),
            "seed {seed}: pause {pause:?}"
        );
        assert_eq!(sim.core.session_id(), id);
        assert_ne!(sim.connected_host(), Some(first));
        assert_eq!(sim.core.counters().failovers, 1);
    }
}

#[test]
fn frozen_server_is_detected_after_a_third_of_the_timeout() {
    let mut sim = Sim::new(3, cfg());
    let first = connected(&mut sim);
    sim.run_for(Duration::from_millis(1500));
    let frozen_at = sim.elapsed();
    sim.set_mode(first, Mode::Frozen);
    let pause = reconnect_pause(&mut sim, T);
    let since_freeze = sim.elapsed() - frozen_at;
    assert!(
        since_freeze <= T / 3 + Duration::from_millis(5),
        "{since_freeze:?}"
    );
    assert!(pause < Duration::from_millis(5), "{pause:?}");
    assert_eq!(sim.core.counters().detector_trips, 1);
    assert!(sim.session_exists_on_servers(sim.core.session_id()));
}

#[test]
fn two_unresponsive_hosts_do_not_cost_the_session() {
    for seed in 0..20 {
        let mut c = cfg();
        c.rng_seed = Some(seed);
        let mut sim = Sim::new(3, c);
        let first = connected(&mut sim);
        let id = sim.core.session_id();
        sim.run_for(Duration::from_millis(700));
        // The connected host and the next one stop answering; the third is fine.
        let others: Vec<usize> = (0..3).filter(|&h| h != first).collect();
        sim.set_mode(first, Mode::Frozen);
        sim.set_mode(others[0], Mode::Frozen);
        let frozen_at = sim.elapsed();
        reconnect_pause(&mut sim, T);
        let total = sim.elapsed() - frozen_at;
        assert_eq!(sim.connected_host(), Some(others[1]), "seed {seed}");
        assert_eq!(sim.core.session_id(), id);
        // T/3 detection plus at most one handshake budget on the other frozen host: this
        // session's handshakes took well under a millisecond, so the 200 ms floor applies
        // rather than the attempt cap (T/6 = 1 s).
        assert!(
            total <= T / 3 + Duration::from_millis(210),
            "seed {seed}: {total:?}"
        );
    }
}

#[test]
fn reads_pipelined_behind_a_failed_handshake_are_sent_again() {
    for seed in 0..10 {
        let mut c = cfg();
        c.rng_seed = Some(seed);
        let mut sim = Sim::new(3, c);
        let first = connected(&mut sim);
        let second = (first + 1) % 3;
        sim.set_mode(first, Mode::Frozen);
        sim.set_mode(second, Mode::Frozen);
        // Submitted while the connection is silently dead: the read rides along with the
        // next handshake, which may be the frozen host's.
        let r = sim.submit(read());
        reconnect_pause(&mut sim, T);
        sim.run_for(Duration::from_millis(5));
        assert!(
            sim.result(r).unwrap().is_ok(),
            "seed {seed}: the read was answered"
        );
    }
}

#[test]
fn two_of_five_frozen_keeps_the_session() {
    let mut sim = Sim::new(5, cfg());
    let first = connected(&mut sim);
    let id = sim.core.session_id();
    sim.run_for(Duration::from_millis(300));
    let second = (first + 1) % 5;
    sim.set_mode(first, Mode::Frozen);
    sim.set_mode(second, Mode::Frozen);
    reconnect_pause(&mut sim, T);
    assert_eq!(sim.core.session_id(), id);
    assert!(
        sim.connected_host()
            .is_some_and(|h| h != first && h != second)
    );
}

#[test]
fn all_down_then_one_back_before_expiry() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    let id = sim.core.session_id();
    for h in 0..3 {
        sim.crash(h);
    }
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.state(), SessionState::Disconnected);
    sim.set_mode(1, Mode::Up);
    let pause = reconnect_pause(&mut sim, Duration::from_secs(3));
    assert_eq!(sim.core.session_id(), id);
    // Backoff is capped at 1 s: back well within the session's lifetime.
    assert!(
        pause < Duration::from_secs(3) + Duration::from_millis(1100),
        "{pause:?}"
    );
}

#[test]
fn all_down_longer_than_the_session_reports_local_expiry() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    let r = sim.submit(read());
    sim.run_for(Duration::from_millis(10));
    assert!(sim.result(r).unwrap().is_ok());
    for h in 0..3 {
        sim.crash(h);
    }
    let lost_at = sim.elapsed();
    let pending = sim.submit(read());
    assert!(sim.run_until_cond(T * 2, |s| s.state().is_terminal()));
    assert_eq!(
        sim.state(),
        SessionState::Expired {
            by: ExpiredBy::Local
        }
    );
    let after = sim.elapsed() - lost_at;
    assert!(
        after >= T && after <= T * 4 / 3 + Duration::from_millis(100),
        "{after:?}"
    );
    assert_eq!(
        sim.result(pending),
        Some(&Err(RequestError::SessionExpired {
            by: ExpiredBy::Local
        }))
    );
    // Nothing is attempted after a terminal state.
    let attempts = sim.core.counters().attempts;
    sim.run_for(T);
    assert_eq!(sim.core.counters().attempts, attempts);
}

/// The leader dies: its connections end once the kernel has torn the JVM down (15 ms), the
/// followers see their leader's connection end about then (a millisecond earlier here, so
/// that no client of the dead leader is served by a follower in between: a real race, but
/// not the one under test), drop their clients and elect; `election` after the crash they
/// serve. Returns the moment (elapsed) they do.
fn leader_dies(sim: &mut Sim, leader: usize, election: Duration) -> Duration {
    sim.crash(leader);
    let teardown = Duration::from_millis(14);
    sim.run_for(teardown);
    for h in (0..3).filter(|&h| h != leader) {
        sim.elect(h);
    }
    sim.run_for(election - teardown);
    for h in (0..3).filter(|&h| h != leader) {
        sim.set_mode(h, Mode::Up);
    }
    sim.elapsed()
}

/// How one session fared in one election.
#[derive(Debug, Clone, Copy)]
struct Waited {
    /// Connections the servers accepted from the death of the leader to the reconnect.
    accepted: usize,
    /// From the end of the election to the successful handshake.
    beyond: Duration,
}

/// Kills `leader`, waits out an election of `election` and the reconnect, then restarts the
/// dead server as a follower and lets the session settle.
fn wait_out(sim: &mut Sim, leader: usize, election: Duration) -> Waited {
    let before_conns = sim.accepted;
    let before_reconnects = sim.core.counters().reconnects;
    let served_at = leader_dies(sim, leader, election);
    assert!(
        sim.run_until_cond(Duration::from_secs(5), |s| s.core.counters().reconnects
            > before_reconnects
            && s.state() == SessionState::Connected),
        "not reconnected; states: {:?}",
        sim.states
    );
    let beyond = sim.handshakes.last().unwrap().0.saturating_sub(served_at);
    let accepted = sim.accepted - before_conns;
    sim.set_mode(leader, Mode::Up);
    sim.run_for(Duration::from_secs(2));
    Waited { accepted, beyond }
}

/// A small deterministic generator for election lengths.
fn jittered(seed: u64, k: u64, base: Duration, plus_minus: Duration) -> Duration {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    let span = u64::try_from(plus_minus.as_micros()).unwrap() * 2 + 1;
    base - plus_minus + Duration::from_micros(x % span)
}

/// Issue 12: a fleet of 1,000 sessions that share nothing (as separate processes would:
/// no `SharedHosts`, each its own seed) waits out a 400 ms election with at most five
/// connections each, every one back within 250 ms of its end, and the fleet's connections
/// spread out in time rather than in one burst. In the next two elections (385–415 ms), once
/// every session has learned how long elections take, they come back sooner with at most
/// six connections (four on average).
#[test]
fn a_thousand_separate_sessions_wait_out_an_election_with_few_connections() {
    const FLEET: u64 = 1000;
    let mut first = Vec::new();
    let mut learned = Vec::new();
    let mut first_probe_times = Vec::new();
    for seed in 0..FLEET {
        let mut c = SessionConfig::with_timeout(T);
        c.rng_seed = Some(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xfee7);
        let mut sim = Sim::new(3, c);
        connected(&mut sim);
        let crash_at = sim.elapsed();
        let skip = sim.accepted_at.len();
        first.push(wait_out(&mut sim, 0, Duration::from_millis(400)));
        first_probe_times.extend(
            sim.accepted_at[skip..]
                .iter()
                .map(|t| t.saturating_sub(crash_at)),
        );
        for k in 1..3 {
            let election = jittered(
                seed,
                k,
                Duration::from_millis(400),
                Duration::from_millis(15),
            );
            learned.push(wait_out(&mut sim, usize::try_from(k).unwrap(), election));
        }
        assert_eq!(sim.state(), SessionState::Connected);
    }
    for (what, runs) in [("first election", &first), ("learned elections", &learned)] {
        let worst_conns = runs.iter().map(|w| w.accepted).max().unwrap();
        let worst_back = runs.iter().map(|w| w.beyond).max().unwrap();
        let mut backs: Vec<Duration> = runs.iter().map(|w| w.beyond).collect();
        backs.sort();
        let mean_conns = runs.iter().map(|w| w.accepted).sum::<usize>() as f64 / runs.len() as f64;
        println!(
            "{what}: connections per session mean {mean_conns:.2}, max {worst_conns}; \
             back after the end p50 {:?}, p90 {:?}, max {worst_back:?}",
            backs[backs.len() / 2],
            backs[backs.len() * 9 / 10]
        );
        // The bound is for an election no session could predict; once they have
        // learned, a train that misses the end costs one more connection now and then.
        let (max_conns, max_mean) = if what == "first election" {
            (5, 4.5)
        } else {
            (6, 4.0)
        };
        assert!(
            worst_conns <= max_conns,
            "{what}: {worst_conns} connections"
        );
        assert!(
            mean_conns <= max_mean,
            "{what}: {mean_conns} connections on average"
        );
        assert!(
            worst_back <= Duration::from_millis(250),
            "{what}: back {worst_back:?} after the election"
        );
    }
    // No probe is wasted inside the finalize wait (only the connection that found the
    // survivors electing, right after the loss), and no 10 ms slice after it holds more
    // than 15 % of the fleet's connections (they spread over the 200–300 ms of the first
    // probe's jitter and on).
    let mut slices = [0_usize; 100];
    for t in &first_probe_times {
        let ms = usize::try_from(t.as_millis()).unwrap();
        assert!(
            !(30..200).contains(&ms),
            "a connection {t:?} after the crash, inside the finalize wait"
        );
        if let Some(slot) = slices.get_mut(ms / 10) {
            *slot += 1;
        }
    }
    println!("the fleet's connections per 10 ms from the crash: {slices:?}");
    let peak = slices[3..].iter().max().unwrap();
    println!("peak connections in a 10 ms slice after the finalize wait: {peak}");
    assert!(*peak <= 150, "{peak} connections in one 10 ms slice");
}

/// Issue 12: a lone session still comes back within 10 ms of an election's end (the median
/// over the elections after it has seen three; none over 25 ms) with elections of 390–410 ms
/// that it cannot predict exactly, and within 250 ms of the first.
#[test]
fn a_lone_session_comes_back_within_10_ms_of_elections_it_has_learned() {
    for seed in 0..20 {
        let mut c = cfg();
        c.rng_seed = Some(seed);
        let mut sim = Sim::new(3, c);
        connected(&mut sim);
        let mut runs = Vec::new();
        for k in 0..8 {
            let election = jittered(
                seed,
                k,
                Duration::from_millis(400),
                Duration::from_millis(10),
            );
            runs.push(wait_out(
                &mut sim,
                usize::try_from(k % 3).unwrap(),
                election,
            ));
        }
        assert!(
            runs[0].beyond <= Duration::from_millis(250),
            "seed {seed}: {runs:?}"
        );
        let mut learned: Vec<Duration> = runs[3..].iter().map(|w| w.beyond).collect();
        learned.sort();
        assert!(
            learned[learned.len() / 2] <= Duration::from_millis(10),
            "seed {seed}: median of the learned elections; {runs:?}"
        );
        assert!(
            learned.iter().all(|b| *b <= Duration::from_millis(25)),
            "seed {seed}: learned elections {runs:?}"
        );
        assert!(
            runs.iter().all(|w| w.accepted <= 6),
            "seed {seed}: {runs:?}"
        );
        assert!(sim.core.counters().elections_waited >= 8);
    }
}

#[test]
fn election_probes_are_paced_process_wide() {
    // 4,000 probes of other sessions of the process are booked ahead (100 µs apart: the next
    // 400 ms), so this session's first probe, planned after the 200 ms finalize wait, waits
    // for its turn after them instead of adding to the burst.
    let (mut sim, shared, first) = connected_sharing();
    let before = sim.core.counters().attempts;
    sim.crash(first);
    for h in (0..3).filter(|&h| h != first) {
        sim.elect(h);
    }
    for _ in 0..4000 {
        let _ = shared.book_election_retry(sim.now);
    }
    sim.run_for(Duration::from_millis(390));
    // The connection that found the survivors electing (after a refusal, maybe), then
    // nothing until the booked slot.
    let early = sim.core.counters().attempts - before;
    assert!((1..=2).contains(&early), "{early} attempts");
    sim.run_for(Duration::from_millis(40));
    assert!(sim.core.counters().attempts - before > early);
}

#[test]
fn a_slow_server_that_serves_other_sessions_is_waited_for() {
    // After a crash every other server is overloaded: handshakes take 1.5 s, longer than
    // the per-attempt cap (T/6 = 1 s). Other sessions of the process keep completing
    // handshakes there, so the attempt is extended instead of thrown away.
    let (mut sim, shared, first) = connected_sharing();
    let id = sim.core.session_id();
    let others: Vec<usize> = (0..3).filter(|&h| h != first).collect();
    for &h in &others {
        sim.hosts[h].handshake_delay = Duration::from_millis(1500);
    }
    sim.crash(first);
    let crashed_at = sim.elapsed();
    for _ in 0..40 {
        sim.run_for(Duration::from_millis(50));
        for &h in &others {
            shared.handshake_succeeded(sim.hosts[h].addr, sim.now);
        }
        if sim.core.counters().reconnects > 0 && sim.state() == SessionState::Connected {
            break;
        }
    }
    assert_eq!(sim.state(), SessionState::Connected);
    assert_eq!(sim.core.session_id(), id);
    let counters = sim.core.counters();
    // The handshake budget (200 ms here) ran out first, then every extension found the
    // server still serving others.
    assert!(
        (1..=3).contains(&counters.extended_attempts),
        "{counters:?}"
    );
    assert_eq!(counters.failed_attempts, 0, "{counters:?}");
    assert!(sim.elapsed() - crashed_at < Duration::from_millis(1600));
}

#[test]
fn a_frozen_server_is_not_waited_for_on_old_news() {
    // The registry saw handshakes on the server before it froze, none after: the attempt
    // there ends at the cap as usual.
    let (mut sim, shared, first) = connected_sharing();
    for h in 0..3 {
        shared.handshake_succeeded(sim.hosts[h].addr, sim.now);
    }
    sim.run_for(Duration::from_millis(100));
    let others: Vec<usize> = (0..3).filter(|&h| h != first).collect();
    sim.set_mode(first, Mode::Frozen);
    sim.set_mode(others[0], Mode::Frozen);
    let frozen_at = sim.elapsed();
    reconnect_pause(&mut sim, T);
    assert_eq!(sim.core.counters().extended_attempts, 0);
    assert!(sim.elapsed() - frozen_at <= T / 3 + T / 6 + Duration::from_millis(10));
}

#[test]
fn server_behind_our_zxid_is_skipped() {
    let mut c = cfg();
    c.rng_seed = Some(4);
    let mut sim = Sim::new(3, c);
    let first = connected(&mut sim);
    let w = sim.submit(write());
    sim.run_for(Duration::from_millis(5));
    assert!(sim.result(w).unwrap().is_ok());
    // One server lags behind what we have seen; it refuses us (closes), another accepts.
    let lagging = (first + 1) % 3;
    sim.hosts[lagging].lag = 5;
    sim.crash(first);
    reconnect_pause(&mut sim, Duration::from_secs(1));
    let now_on = sim.connected_host().unwrap();
    assert_ne!(now_on, lagging);
    assert_ne!(now_on, first);
}

#[test]
fn expiry_by_the_server_is_terminal() {
    let mut sim = Sim::new(3, cfg());
    let first = connected(&mut sim);
    // Freeze long enough that the ensemble expires the session while we cannot reach it.
    for h in 0..3 {
        if h != first {
            sim.set_mode(h, Mode::Frozen);
        }
    }
    sim.set_mode(first, Mode::Frozen);
    // Nobody touches the session; the (frozen-but-quorate) ensemble expires it.
    sim.run_for(Duration::from_millis(500));
    for h in 0..3 {
        sim.set_mode(h, Mode::Up);
    }
    // Ensure the servers forget it, then let the client come back.
    let id = sim.core.session_id();
    sim.run_until_cond(T * 2, |s| s.state().is_terminal());
    assert!(!sim.session_exists_on_servers(id) || sim.state() == SessionState::Connected);
    if sim.state().is_terminal() {
        assert!(matches!(sim.state(), SessionState::Expired { .. }));
    }
}

#[test]
fn wrong_password_means_expired_by_server() {
    let mut c = cfg();
    c.resume = Some(SavedSession {
        session_id: 0x0100_0000_0000_0099,
        password: Bytes::from_static(&[7; 16]),
    });
    let mut sim = Sim::new(3, c);
    sim.start();
    assert!(sim.run_until_cond(Duration::from_secs(1), |s| s.state().is_terminal()));
    assert_eq!(
        sim.state(),
        SessionState::Expired {
            by: ExpiredBy::Server
        }
    );
    let r = sim.submit(read());
    assert_eq!(
        sim.result(r),
        Some(&Err(RequestError::SessionExpired {
            by: ExpiredBy::Server
        }))
    );
}

#[test]
fn reads_are_resent_and_writes_fail_with_outcome_unknown() {
    let mut sim = Sim::new(3, cfg());
    let first = connected(&mut sim);
    sim.set_mode(first, Mode::Frozen);
    let r = sim.submit(read());
    let w = sim.submit(write());
    sim.run_for(Duration::from_millis(1));
    assert!(sim.result(r).is_none() && sim.result(w).is_none());
    reconnect_pause(&mut sim, T);
    sim.run_for(Duration::from_millis(5));
    assert!(sim.result(r).unwrap().is_ok(), "the read was re-sent");
    assert_eq!(
        sim.result(w),
        Some(&Err(RequestError::ConnectionLoss {
            outcome_unknown: true
        }))
    );
    assert_eq!(sim.core.counters().resent, 1);
}

#[test]
fn requests_submitted_while_disconnected_wait_or_time_out() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    for h in 0..3 {
        sim.crash(h);
    }
    sim.run_for(Duration::from_millis(50));
    let waits = sim.submit(write());
    let deadline = sim.now + Duration::from_millis(500);
    let times_out = sim.submit(read().with_deadline(deadline));
    sim.run_for(Duration::from_millis(600));
    assert_eq!(sim.result(times_out), Some(&Err(RequestError::Timeout)));
    assert!(sim.result(waits).is_none());
    sim.set_mode(2, Mode::Up);
    reconnect_pause(&mut sim, Duration::from_secs(3));
    sim.run_for(Duration::from_millis(5));
    assert!(
        sim.result(waits).unwrap().is_ok(),
        "a write queued while disconnected is sent once, after the reconnect"
    );
}

#[test]
fn session_moved_is_a_connection_loss_not_a_session_failure() {
    let mut sim = Sim::new(3, cfg());
    let first = connected(&mut sim);
    let id = sim.core.session_id();
    sim.hosts[first].session_moved = true;
    // The write is answered with SessionMoved (so it was not applied); the read behind it
    // is lost with the connection and re-sent.
    let w = sim.submit(write());
    let r = sim.submit(read());
    reconnect_pause(&mut sim, Duration::from_secs(1));
    sim.run_for(Duration::from_millis(5));
    assert_eq!(sim.core.session_id(), id);
    assert!(
        sim.result(r).unwrap().is_ok(),
        "the read is answered by the next server"
    );
    assert_eq!(
        sim.result(w),
        Some(&Err(RequestError::ConnectionLoss {
            outcome_unknown: false
        }))
    );
    assert!(sim.state().is_connected());
}

#[test]
fn takeover_ping_pong_ends_in_a_typed_state() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    // From now on every connection is closed by the server shortly after its handshake:
    // another client keeps re-establishing the same session.
    sim.kick_after = Some(Duration::from_millis(20));
    sim.crash(sim.connected_host().unwrap());
    sim.set_mode(0, Mode::Up);
    sim.set_mode(1, Mode::Up);
    sim.set_mode(2, Mode::Up);
    assert!(sim.run_until_cond(Duration::from_secs(10), |s| s.state().is_terminal()));
    assert_eq!(sim.state(), SessionState::TakenOver);
    assert!(sim.core.counters().reconnects <= 6);
}

/// Found by the chaos suite: leaders killed or frozen every second or two close every
/// follower's connections, often within T/3 of their handshake — the same young, orderly
/// closes a twin produces. But between them the servers were electing (accepting and
/// closing), which a twin never causes: that is no take-over.
#[test]
fn young_connections_closed_by_elections_are_not_a_takeover() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    for round in 0..8 {
        sim.run_for(Duration::from_millis(100));
        // The leader dies: every server closes its client connections and elects.
        let on = sim.connected_host().unwrap();
        sim.crash(on);
        for h in 0..3 {
            sim.set_mode(h, Mode::Electing);
        }
        sim.run_for(Duration::from_millis(300));
        for h in 0..3 {
            sim.set_mode(h, Mode::Up);
        }
        assert!(
            sim.run_until_cond(Duration::from_secs(2), |s| s.state()
                == SessionState::Connected),
            "round {round}: {:?}",
            sim.state()
        );
    }
    assert_eq!(sim.core.counters().reconnects, 8);
}

#[test]
fn dns_name_with_several_addresses_tries_each() {
    let specs = vec![HostSpec {
        host: Host::Name("zk.example".into()),
        port: 2181,
    }];
    let mut sim = Sim::with_provider(2, cfg(), Box::new(StaticHostProvider::new(specs)));
    let dead = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 1));
    sim.dns
        .insert("zk.example".into(), vec![dead, sim.hosts[1].addr]);
    sim.start();
    assert!(sim.run_until_cond(Duration::from_secs(1), |s| s.state()
        == SessionState::Connected));
    assert_eq!(sim.connected_host(), Some(1));
}

#[test]
fn unresolvable_name_is_skipped() {
    let specs = vec![
        HostSpec {
            host: Host::Name("gone.example".into()),
            port: 2181,
        },
        host_spec(9001),
    ];
    let mut sim = Sim::with_provider(1, cfg(), Box::new(StaticHostProvider::in_order(specs)));
    sim.start();
    assert!(sim.run_until_cond(Duration::from_secs(1), |s| s.state()
        == SessionState::Connected));
    assert_eq!(sim.connected_host(), Some(0));
}

#[test]
fn read_only_server_then_move_to_read_write() {
    let mut c = cfg();
    c.can_be_read_only = true;
    let mut sim = Sim::new(3, c);
    sim.set_mode(0, Mode::ReadOnly);
    sim.set_mode(1, Mode::Down);
    sim.set_mode(2, Mode::Down);
    sim.start();
    assert!(sim.run_until_cond(Duration::from_secs(2), |s| s.state()
        == SessionState::ConnectedReadOnly));
    let ro_id = sim.core.session_id();
    let w = sim.submit(write());
    sim.run_for(Duration::from_millis(5));
    assert_eq!(
        sim.result(w).unwrap().as_ref().unwrap().err,
        ErrorCode::NotReadOnly
    );
    // A read-write server comes back: the probe finds it and the client moves, with a new
    // session (a read-only session cannot move).
    sim.set_mode(1, Mode::Up);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| s.state()
        == SessionState::Connected));
    assert_eq!(sim.connected_host(), Some(1));
    assert_ne!(sim.core.session_id(), ro_id);
}

#[test]
fn adaptive_detector_finds_a_frozen_server_within_a_second_at_long_timeouts() {
    for t in [Duration::from_secs(6), Duration::from_secs(30)] {
        let mut c = seeded(t);
        c.timing.adaptive = Some(AdaptiveDetector::default());
        let mut sim = Sim::new(3, c);
        let first = connected(&mut sim);
        sim.run_for(Duration::from_secs(3));
        let frozen_at = sim.elapsed();
        sim.set_mode(first, Mode::Frozen);
        reconnect_pause(&mut sim, t);
        let detect = sim.elapsed() - frozen_at;
        assert!(detect <= Duration::from_secs(1), "T={t:?}: {detect:?}");
    }
}

#[test]
fn adaptive_detector_raises_no_false_alarm_on_a_healthy_busy_connection() {
    let mut c = seeded(Duration::from_secs(30));
    c.timing.adaptive = Some(AdaptiveDetector::default());
    let mut sim = Sim::new(3, c);
    connected(&mut sim);
    // Ten minutes of virtual time, a request every 7 ms, latency varying 0.1..5 ms.
    for i in 0..85_000_u32 {
        sim.latency = Duration::from_micros(100 + u64::from(i * 7919 % 4900));
        sim.submit(if i % 5 == 0 { write() } else { read() });
        sim.run_for(Duration::from_millis(7));
    }
    assert_eq!(sim.core.counters().detector_trips, 0);
    assert_eq!(sim.core.counters().reconnects, 0);
}

#[test]
fn graceful_close_sends_close_session() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    let id = sim.core.session_id();
    assert!(sim.session_exists_on_servers(id));
    sim.close();
    assert!(sim.run_until_cond(Duration::from_secs(1), |s| s.state()
        == SessionState::Closed));
    assert!(
        !sim.session_exists_on_servers(id),
        "the ensemble dropped the session at once"
    );
}

#[test]
fn oversized_request_is_refused_locally() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    let big = Request::write(OpCode::SetData, Bytes::from(vec![0u8; 2 * 1024 * 1024]));
    let id = sim.submit(big);
    assert!(matches!(
        sim.result(id),
        Some(Err(RequestError::RequestTooLarge { .. }))
    ));
    assert!(sim.state().is_connected());
}

/// Random fault schedules: the invariants in the harness (one connection at a time, zxid
/// monotonic, exactly-once completion) hold, the session survives whenever a quorum was
/// reachable in time, and every request completes.
#[test]
fn random_fault_schedules_keep_the_invariants() {
    for seed in 0..60_u64 {
        let mut c = cfg();
        c.rng_seed = Some(seed);
        let mut sim = Sim::new(3, c);
        connected(&mut sim);
        let mut rng = zk_session_core::rng::Rng::new(seed ^ 0xabcdef);
        let mut ids = Vec::new();
        for _step in 0..40 {
            let h = usize::try_from(rng.below(3)).unwrap();
            match rng.below(6) {
                0 => sim.crash(h),
                1 => sim.set_mode(h, Mode::Frozen),
                2 => sim.set_mode(h, Mode::Electing),
                _ => sim.set_mode(h, Mode::Up),
            }
            // Keep at most one host down at a time so a quorum is always reachable.
            for other in 0..3 {
                if other != h {
                    sim.set_mode(other, Mode::Up);
                }
            }
            ids.push(sim.submit(if rng.below(2) == 0 { read() } else { write() }));
            sim.run_for(Duration::from_millis(rng.below(800)));
        }
        for h in 0..3 {
            sim.set_mode(h, Mode::Up);
        }
        sim.run_for(T);
        assert!(sim.state().is_connected(), "seed {seed}: {:?}", sim.states);
        for id in ids {
            assert!(
                sim.result(id).is_some(),
                "seed {seed}: request {id:?} never completed"
            );
        }
    }
}

struct Watches {
    packets: usize,
    size: usize,
    built: Arc<std::sync::atomic::AtomicUsize>,
}

impl zk_session_core::Preamble for Watches {
    fn build(&mut self, _relative_zxid: i64, out: &mut Vec<zk_session_core::PreamblePacket>) {
        self.built
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..self.packets {
            out.push(zk_session_core::PreamblePacket {
                xid: zk_proto::xid::SET_WATCHES,
                op: OpCode::SetWatches,
                body: Bytes::from(vec![0u8; self.size]),
            });
        }
    }
}

#[test]
fn preamble_is_sent_on_every_handshake_small_or_large() {
    for (packets, size) in [(2, 100), (12, 100_000)] {
        let built = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut sim = Sim::new(3, cfg());
        sim.core.set_preamble(Box::new(Watches {
            packets,
            size,
            built: built.clone(),
        }));
        let first = connected(&mut sim);
        sim.run_for(Duration::from_millis(5));
        assert_eq!(sim.preamble_replies, packets);
        sim.crash(first);
        reconnect_pause(&mut sim, Duration::from_secs(1));
        let r = sim.submit(read());
        sim.run_for(Duration::from_millis(5));
        assert!(sim.result(r).unwrap().is_ok());
        assert_eq!(
            sim.preamble_replies,
            2 * packets,
            "re-sent after the reconnect"
        );
        assert_eq!(built.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}

/// The frozen server was the leader: the other servers hold an election for a while after
/// the freeze is detected. The client must keep probing them (never more than 250 ms apart)
/// and never spend an attempt on the frozen host meanwhile.
#[test]
fn frozen_leader_then_election_does_not_wait_on_the_frozen_host() {
    for seed in 0..10 {
        let mut c = seeded(Duration::from_secs(30));
        c.timing.adaptive = Some(AdaptiveDetector::default());
        c.rng_seed = Some(seed);
        let mut sim = Sim::new(3, c);
        let first = connected(&mut sim);
        sim.run_for(Duration::from_secs(1));
        sim.set_mode(first, Mode::Frozen);
        let frozen_at = sim.elapsed();
        // The followers notice and start electing after about a second.
        sim.run_for(Duration::from_millis(900));
        for h in (0..3).filter(|&h| h != first) {
            sim.set_mode(h, Mode::Electing);
        }
        sim.run_for(Duration::from_millis(1500));
        for h in (0..3).filter(|&h| h != first) {
            sim.set_mode(h, Mode::Up);
        }
        let served_at = sim.elapsed();
        reconnect_pause(&mut sim, Duration::from_secs(30));
        let beyond = sim.elapsed() - served_at;
        assert!(
            beyond < Duration::from_millis(300),
            "seed {seed}: {beyond:?} after the election ({:?} after the freeze)",
            sim.elapsed() - frozen_at
        );
        assert_ne!(sim.connected_host(), Some(first));
    }
}

/// Reply batching is the core's decision: with many reads in flight on an established
/// connection it lets the driver gather the smallest possible answers to half of them; once
/// nothing has arrived for 1 ms it asks for every byte again, until bytes arrive; and never
/// with batching switched off.
#[test]
fn the_core_decides_when_replies_may_be_batched() {
    for batching in [true, false] {
        let mut c = cfg();
        c.reply_batching = batching;
        let mut sim = Sim::new(3, c);
        let h = connected(&mut sim);
        assert_eq!(sim.core.receive_hint(), 1);
        // A frozen server takes the requests and answers none of them.
        sim.set_mode(h, Mode::Frozen);
        for _ in 0..64 {
            sim.submit(read());
        }
        sim.run_for(Duration::from_micros(500));
        assert_eq!(sim.core.in_flight(), 64);
        // 63 × 20 bytes / 2 = 630, rounded down to a power of two.
        let expected = if batching { 512 } else { 1 };
        assert_eq!(sim.core.receive_hint(), expected);
        sim.run_for(Duration::from_millis(2));
        assert_eq!(sim.core.receive_hint(), 1, "the batch timer fired");
        // Answers flow again: everything is answered and the hint is back to one byte.
        sim.set_mode(h, Mode::Up);
        sim.run_for(Duration::from_millis(5));
        assert_eq!(sim.core.in_flight(), 0);
        assert_eq!(sim.core.receive_hint(), 1);
    }
}

/// A 5-host simulation whose session starts with the first three in its host list.
fn three_of_five(seed: u64, spread: Duration) -> Sim {
    let mut c = cfg();
    c.rng_seed = Some(seed);
    c.timing.rebalance_spread = spread;
    let first_three: Vec<HostSpec> = (0..3).map(|i| host_spec(9001 + i)).collect();
    Sim::with_provider(5, c, Box::new(StaticHostProvider::new(first_three)))
}

fn all_five() -> Vec<HostSpec> {
    (0..5).map(|i| host_spec(9001 + i)).collect()
}

/// ZOOKEEPER-1355 in the engine: when the list grows from 3 to 5 servers, about 2/5 of the
/// sessions move to the new ones (so each new server gets its share), each at its own
/// moment within the spread window, keeping its session; the others stay.
#[test]
fn rebalance_on_growth_moves_the_new_share_spread_over_the_window() {
    let mut moved_at = Vec::new();
    let runs = 200;
    for seed in 0..runs {
        let mut sim = three_of_five(seed, Duration::from_secs(5));
        let first = connected(&mut sim);
        let id = sim.core.session_id();
        let at = sim.elapsed();
        assert_eq!(sim.core.update_hosts(sim.now, all_five()), Ok(true));
        sim.run_for(Duration::from_secs(6));
        assert_eq!(sim.core.session_id(), id, "seed {seed}: same session");
        assert_eq!(sim.state(), SessionState::Connected);
        let on = sim.connected_host().unwrap();
        if on != first {
            assert!(
                on >= 3,
                "seed {seed}: moves go to the new servers, not to {on}"
            );
            assert_eq!(sim.core.counters().rebalances, 1);
            let (when, _, _) = *sim.states.last().unwrap();
            moved_at.push(when.saturating_sub(at));
        } else {
            assert_eq!(sim.core.counters().rebalances, 0);
        }
    }
    let share = moved_at.len() as f64 / f64::from(u32::try_from(runs).unwrap());
    assert!(
        (0.28..0.52).contains(&share),
        "{share:.2} of the sessions moved"
    );
    moved_at.sort();
    let early = moved_at
        .iter()
        .filter(|t| **t < Duration::from_secs(1))
        .count();
    assert!(
        early * 2 < moved_at.len(),
        "moves not spread out: {early} of {} in the first second",
        moved_at.len()
    );
    assert!(*moved_at.last().unwrap() < Duration::from_millis(5050));
}

/// The session's server leaves the list: the session moves within a fifth of the window,
/// same session, and a read in flight is answered.
#[test]
fn a_removed_server_is_left_within_a_fifth_of_the_window() {
    for seed in 0..20 {
        let mut sim = three_of_five(seed, Duration::from_secs(5));
        let first = connected(&mut sim);
        let id = sim.core.session_id();
        let rest: Vec<HostSpec> = (0..3)
            .filter(|i| *i != first)
            .map(|i| host_spec(9001 + u16::try_from(i).unwrap()))
            .collect();
        assert_eq!(sim.core.update_hosts(sim.now, rest), Ok(true));
        let r = sim.submit(read());
        assert!(sim.run_until_cond(Duration::from_secs(1), |s| {
            s.connected_host().is_some_and(|h| h != first)
        }));
        sim.run_for(Duration::from_millis(10));
        assert!(matches!(sim.result(r), Some(Ok(_))), "seed {seed}");
        assert_eq!(sim.core.session_id(), id);
    }
}

/// A move never abandons a write in flight: it waits for the answer, then goes.
#[test]
fn a_move_waits_for_the_write_in_flight() {
    let mut sim = three_of_five(1, Duration::ZERO);
    sim.latency = Duration::from_millis(100);
    let first = connected(&mut sim);
    let rest: Vec<HostSpec> = (0..3)
        .filter(|i| *i != first)
        .map(|i| host_spec(9001 + u16::try_from(i).unwrap()))
        .collect();
    let w = sim.submit(write());
    sim.run_for(Duration::from_millis(20));
    assert_eq!(sim.core.update_hosts(sim.now, rest), Ok(true));
    assert!(sim.run_until_cond(Duration::from_secs(2), |s| {
        s.connected_host().is_some_and(|h| h != first)
    }));
    assert!(matches!(sim.result(w), Some(Ok(_))), "{:?}", sim.result(w));
}

/// The same hosts in another order, or with duplicates, are no change; an empty list is
/// refused and the old list stays.
#[test]
fn an_unchanged_set_is_no_update_and_an_empty_list_is_refused() {
    let mut sim = Sim::new(3, cfg());
    connected(&mut sim);
    let mut same: Vec<HostSpec> = (0..3).rev().map(|i| host_spec(9001 + i)).collect();
    same.push(host_spec(9001));
    assert_eq!(sim.core.update_hosts(sim.now, same), Ok(false));
    assert_eq!(
        sim.core.update_hosts(sim.now, Vec::new()),
        Err(zk_session_core::HostsError::Empty)
    );
    assert_eq!(sim.core.counters().host_updates, 0);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.state(), SessionState::Connected);
}
