//! The session engine against a real 3-node ZooKeeper 3.8 ensemble (Debian's package,
//! started by zk-testkit), with servers killed, frozen and blackholed for real.
//!
//! One ensemble serves the whole binary; scenarios run one at a time from a healed
//! ensemble. Bounds are generous (a shared 2-core machine): the tests assert behaviour —
//! same session, nothing lost, no expiry — while the pauses are measured by the benchmarks.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "support/real.rs"]
mod real;

use std::time::Duration;

use real::{
    Reader, Timeline, connected, create_req, ephemeral, exists, followers_only, heal, hosts,
    node_of, open, open_in_order, open_with, reconnected, scenario, stop_all,
};
use std::sync::Arc;
use zk_proto::ErrorCode;

use zk_session::{AdaptiveDetector, ExpiredBy, SessionConfig, SessionState};
use zk_testkit::{Ensemble, EnsembleBuilder, ProxyMode};
use zk_transport::TcpConnector;

/// Session timeout used by the tests; the ensemble allows up to 20 ticks of 200 ms.
const T: Duration = Duration::from_secs(4);

fn ensemble() -> EnsembleBuilder {
    // Sessions up to 30 s so the adaptive detector can be shown at a long timeout.
    Ensemble::builder()
        .nodes(3)
        .proxies(true)
        .max_session_timeout(Duration::from_secs(30))
}

fn adaptive(t: Duration) -> SessionConfig {
    let mut cfg = zk_session::config_with_timeout(t);
    cfg.timing.adaptive = Some(AdaptiveDetector::default());
    cfg
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kill_of_connected_server_keeps_session_and_ephemeral() {
    scenario(ensemble, |ens| async move {
        // Followers only, so the pause bound below is the client's and not an election's
        // (the leader's crash is `kill_of_the_leader_keeps_the_session`).
        let (_, followers) = followers_only(ens).await;
        let (h, events) = open(&followers, T);
        let timeline = Timeline::start(events);
        connected(&h).await;
        let id = h.session_id();
        let path = ephemeral(&h, "eph-kill").await;
        let reader = Reader::start(h.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let victim = node_of(ens, &h);
        let killed_at = std::time::Instant::now();
        ens.node(victim).kill().unwrap();
        reconnected(&h, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = reader.stop().await;
        assert_eq!(h.session_id(), id, "same session after the failover");
        assert_ne!(node_of(ens, &h), victim);
        assert!(exists(&h, &path).await, "the ephemeral node survived");
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        assert!(
            report.longest_gap < T / 2,
            "reads paused {:?}; {:?}; node {victim} killed at 0:{}",
            report.longest_gap,
            h.counters(),
            timeline.render(ens, killed_at)
        );
        let c = h.counters();
        assert_eq!((c.reconnects, c.failovers), (1, 1));
        h.close().await;
    });
}

/// 64 readers keep 64 requests in flight, so the driver batches replies behind a raised
/// receive low-water mark; the connected server is killed (then restarted), and the server
/// the session moved to is frozen. Every read is answered (re-sent across both failovers),
/// none fails, the session is the same.
#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn failovers_with_many_reads_in_flight_lose_none() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open(&ens.connect_string(), T);
        connected(&h).await;
        let id = h.session_id();
        let readers: Vec<Reader> = (0..64).map(|_| Reader::start(h.clone())).collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let victim = node_of(ens, &h);
        ens.node(victim).kill().unwrap();
        reconnected(&h, 1).await;
        // Back to three servers, so the freeze below leaves a quorum.
        ens.node(victim).restart().await.unwrap();
        ens.wait_serving_restarting_stuck(Duration::from_secs(30), Duration::from_secs(90))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let frozen = node_of(ens, &h);
        ens.node(frozen).freeze();
        reconnected(&h, 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ok = stop_all(readers).await;
        assert_eq!(h.session_id(), id, "same session after both failovers");
        assert!(!h.state().is_terminal(), "{:?}", h.state());
        assert!(ok > 1000, "only {ok} reads answered");
        h.close().await;
        heal(ens).await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn frozen_server_is_left_before_the_session_expires() {
    scenario(ensemble, |ens| async move {
        // The session is given the followers only, so the frozen server is a follower and
        // the ensemble keeps serving: the pause is the client's alone (a frozen leader is
        // the next test).
        let (leader, followers) = followers_only(ens).await;
        let (h, events) = open(&followers, T);
        let timeline = Timeline::start(events);
        connected(&h).await;
        let id = h.session_id();
        let path = ephemeral(&h, "eph-freeze").await;
        let reader = Reader::start(h.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let victim = node_of(ens, &h);
        assert_ne!(victim, leader);
        let frozen_at = std::time::Instant::now();
        ens.node(victim).freeze();
        reconnected(&h, 1).await;
        let report = reader.stop().await;
        ens.node(victim).thaw();
        assert_eq!(h.session_id(), id);
        assert!(
            exists(&h, &path).await,
            "the ephemeral node survived the freeze"
        );
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        // Detected after T/3 of silence (1.33 s), well before the 4 s expiry.
        assert!(
            report.longest_gap < T * 3 / 4,
            "reads paused {:?}; {:?}; node {victim} frozen at 0:{}",
            report.longest_gap,
            h.counters(),
            timeline.render(ens, frozen_at)
        );
        assert_eq!(h.counters().detector_trips, 1);
        h.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn frozen_leader_is_left_and_the_session_outlives_the_election() {
    scenario(ensemble, |ens| async move {
        let leader = ens.wait_for_leader(Duration::from_secs(10)).await.unwrap();
        // Hosts in this order, unshuffled: the session starts on the leader.
        let order: Vec<usize> = std::iter::once(leader)
            .chain((0..3).filter(|&i| i != leader))
            .collect();
        // A longer timeout than the other tests: on a slow machine the election alone has
        // taken ~4.8 s, and the client reports local expiry 4/3 T after its last contact.
        let t = Duration::from_secs(8);
        let (h, events) = open_in_order(&hosts(ens, &order), t);
        let timeline = Timeline::start(events);
        connected(&h).await;
        assert_eq!(node_of(ens, &h), leader);
        let id = h.session_id();
        let path = ephemeral(&h, "eph-freeze-leader").await;
        let reader = Reader::start(h.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let frozen_at = std::time::Instant::now();
        ens.node(leader).freeze();
        // The followers notice after syncLimit × tickTime (1 s) and elect a new leader; the
        // client leaves the frozen server after T/3 of silence and must not go back to it.
        let new_leader = loop {
            let mut found = None;
            for i in (0..3).filter(|&i| i != leader) {
                if ens.nodes()[i].mode().await.as_deref() == Some("leader") {
                    found = Some(i);
                }
            }
            if let Some(i) = found {
                break i;
            }
            assert!(
                frozen_at.elapsed() < Duration::from_secs(30),
                "no new leader"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let elected_after = frozen_at.elapsed();
        reconnected(&h, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = reader.stop().await;
        ens.node(leader).thaw();
        eprintln!(
            "new leader {new_leader} seen {elected_after:?} after the freeze; longest read gap {:?}",
            report.longest_gap
        );
        assert_eq!(h.session_id(), id);
        assert!(!h.state().is_terminal(), "{:?}", h.state());
        assert_ne!(node_of(ens, &h), leader);
        assert!(exists(&h, &path).await, "the ephemeral node survived");
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        // The gap is the election's or the detector's (T/3), whichever ends later, plus the
        // client's share; only a gross client delay (going back to the frozen host, sleeping
        // through the new leader) breaks this.
        let bound = elected_after.max(t / 3) + t / 4;
        assert!(
            report.longest_gap < bound,
            "reads paused {:?}, the new leader was seen after {elected_after:?}; {:?}; \
             leader {leader} frozen at 0:{}",
            report.longest_gap,
            h.counters(),
            timeline.render(ens, frozen_at)
        );
        h.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn two_of_three_hosts_blackholed_the_session_survives() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open(&ens.connect_string(), T);
        connected(&h).await;
        let id = h.session_id();
        let victim = node_of(ens, &h);
        let other = (victim + 1) % 3;
        // Between client and servers only: the ensemble keeps its quorum.
        ens.proxy(victim).unwrap().set_mode(ProxyMode::Blackhole);
        ens.proxy(other).unwrap().set_mode(ProxyMode::Blackhole);
        let reader = Reader::start(h.clone());
        reconnected(&h, 1).await;
        let report = reader.stop().await;
        assert_eq!(h.session_id(), id, "the session survived");
        assert_eq!(node_of(ens, &h), (victim + 2) % 3);
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        h.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kill_of_the_leader_keeps_the_session() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open(&ens.connect_string(), T);
        connected(&h).await;
        let id = h.session_id();
        let path = ephemeral(&h, "eph-leader").await;
        let reader = Reader::start(h.clone());
        let leader = ens.wait_for_leader(Duration::from_secs(10)).await.unwrap();
        ens.node(leader).kill().unwrap();
        reconnected(&h, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let report = reader.stop().await;
        assert_eq!(h.session_id(), id);
        assert!(exists(&h, &path).await);
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        h.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn rolling_restart_under_load_never_expires_the_session() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open(&ens.connect_string(), T);
        connected(&h).await;
        let id = h.session_id();
        let path = ephemeral(&h, "eph-rolling").await;
        let reader = Reader::start(h.clone());
        for i in 0..3 {
            ens.node(i).kill().unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            ens.node(i).restart().await.unwrap();
            ens.wait_serving_restarting_stuck(Duration::from_secs(30), Duration::from_secs(90))
                .await
                .unwrap();
        }
        let report = reader.stop().await;
        assert_eq!(h.session_id(), id);
        assert!(!h.state().is_terminal(), "{:?}", h.state());
        assert!(
            exists(&h, &path).await,
            "the ephemeral node lived through the rolling restart"
        );
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        h.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn everything_down_longer_than_the_session_is_expired_locally() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open(&ens.connect_string(), T);
        connected(&h).await;
        let started = std::time::Instant::now();
        // Blackhole every host: servers are alive but unreachable, so nothing can answer.
        for p in ens.proxies() {
            p.set_mode(ProxyMode::Blackhole);
        }
        let mut state = h.watch_state();
        let end = tokio::time::timeout(T * 3, state.wait_for(|s| s.state.is_terminal())).await;
        let end = end.expect("a terminal state within 3T").unwrap().state;
        assert_eq!(
            end,
            SessionState::Expired {
                by: ExpiredBy::Local
            }
        );
        let after = started.elapsed();
        assert!(after >= T, "expired too early: {after:?}");
        let err = h.submit(real::exists_req("/")).await.unwrap_err();
        assert_eq!(
            err,
            zk_session::RequestError::SessionExpired {
                by: ExpiredBy::Local
            }
        );
        heal(ens).await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn graceful_close_removes_ephemerals_at_once() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open(&ens.connect_string(), T);
        connected(&h).await;
        let path = format!("/eph-close-{:x}", h.session_id());
        assert_eq!(
            h.submit(create_req(&path, true)).await.unwrap().err,
            ErrorCode::Ok
        );
        h.close().await;
        assert_eq!(h.state(), SessionState::Closed);
        let (other, _e) = open(&ens.connect_string(), T);
        connected(&other).await;
        assert!(
            !exists(&other, &path).await,
            "the ephemeral vanished with closeSession"
        );
        other.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn adaptive_detector_leaves_a_frozen_server_in_about_a_second_at_t_30s() {
    scenario(ensemble, |ens| async move {
        let t = Duration::from_secs(30);
        // Followers only: the bound below is the detector's, not an election's.
        let (_, followers) = followers_only(ens).await;
        let (h, events) = open_with(&followers, adaptive(t), Arc::new(TcpConnector::new()));
        let timeline = Timeline::start(events);
        connected(&h).await;
        assert_eq!(h.negotiated_timeout(), Some(t));
        let id = h.session_id();
        let reader = Reader::start(h.clone());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let victim = node_of(ens, &h);
        let frozen_at = std::time::Instant::now();
        ens.node(victim).freeze();
        reconnected(&h, 1).await;
        let recovered = frozen_at.elapsed();
        let report = reader.stop().await;
        ens.node(victim).thaw();
        assert_eq!(h.session_id(), id);
        assert_eq!(report.failed, 0, "{:?}", report.errors);
        // The default detector would wait T/3 = 10 s; peers wait 12-20 s.
        assert!(
            recovered < Duration::from_secs(4),
            "recovered after {recovered:?}; {:?}; node {victim} frozen at 0:{}",
            h.counters(),
            timeline.render(ens, frozen_at)
        );
        h.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn adaptive_detector_raises_no_false_alarm_on_a_busy_healthy_connection() {
    scenario(ensemble, |ens| async move {
        let (h, _events) = open_with(
            &ens.connect_string(),
            adaptive(Duration::from_secs(30)),
            Arc::new(TcpConnector::new()),
        );
        connected(&h).await;
        let path = format!("/busy-{:x}", h.session_id());
        assert_eq!(
            h.submit(create_req(&path, false)).await.unwrap().err,
            ErrorCode::Ok
        );
        // Reads and writes back to back for 15 s, with idle gaps so pings carry the load too.
        let readers: Vec<Reader> = (0..4).map(|_| Reader::start(h.clone())).collect();
        let end = std::time::Instant::now() + Duration::from_secs(15);
        let mut writes = 0_u32;
        while std::time::Instant::now() < end {
            let w = h.submit(real::set_data_req(&path)).await.unwrap();
            assert_eq!(w.err, ErrorCode::Ok);
            writes += 1;
            if writes.is_multiple_of(50) {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let mut ok = 0;
        for r in readers {
            let report = r.stop().await;
            assert_eq!(report.failed, 0, "{:?}", report.errors);
            ok += report.ok;
        }
        let c = h.counters();
        assert_eq!(
            c.detector_trips, 0,
            "false alarm after {ok} reads and {writes} writes"
        );
        assert_eq!(c.reconnects, 0);
        h.close().await;
    });
}
