//! Watches, auth and requests across real server failures (kill −9 and SIGSTOP freeze) of a
//! 3-node ZooKeeper 3.8 ensemble. One ensemble, one test with sequential steps, since every
//! step takes servers down.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{drain, ensemble_with, fired, run};
use zk_client::{
    AddWatchMode, Client, CreateMode, Error, EventType, KeeperState, OneshotWatcher, SessionState,
    StaticHostProvider, WatchEvent, WatcherKind, acl,
};
use zk_connstr::HostSpec;
use zk_testkit::Ensemble;

static ENS: OnceLock<Ensemble> = OnceLock::new();

const WAIT: Duration = Duration::from_secs(30);
const FIRE: Duration = Duration::from_secs(15);
/// Quiet period in which no duplicate may arrive.
const QUIET: Duration = Duration::from_millis(1500);

fn spec(addr: SocketAddr) -> HostSpec {
    HostSpec::parse(&addr.to_string()).unwrap()
}

/// A client that tries `order` in that order, with a 4 s session (tick 200: the freeze is
/// noticed after T/3 ≈ 1.3 s of silence).
async fn ordered_client(order: &[SocketAddr], chroot: &str) -> Client {
    let hosts: Vec<HostSpec> = order.iter().copied().map(spec).collect();
    let cs = format!(
        "{}{chroot}",
        order
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    Client::builder(&cs)
        .session_timeout(Duration::from_secs(4))
        .host_provider(Box::new(StaticHostProvider::in_order(hosts)))
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

async fn wait_state(c: &Client, want: impl Fn(SessionState) -> bool) -> Duration {
    let t0 = Instant::now();
    let mut rx = c.state_stream();
    tokio::time::timeout(WAIT, rx.wait_for(|s| want(s.state)))
        .await
        .expect("state not reached")
        .unwrap();
    t0.elapsed()
}

/// Asserts a one-shot watcher fired `kind` (exactly once by construction: it then ends).
async fn expect_fired(w: OneshotWatcher, kind: EventType, path: &str) {
    let ev = fired(w, FIRE).await;
    assert_eq!((ev.event_type, ev.path.as_str()), (kind, path), "{ev:?}");
}

/// A new watcher on the same node must not see the change again (no duplicate replay).
async fn expect_silent(w: OneshotWatcher) {
    assert!(
        tokio::time::timeout(QUIET, w).await.is_err(),
        "a change was delivered twice"
    );
}

fn node_events(evs: &[WatchEvent]) -> Vec<(EventType, String)> {
    evs.iter()
        .filter_map(|e| match e {
            WatchEvent::Event(e) => Some((e.event_type, e.path.clone())),
            _ => None,
        })
        .collect()
}

fn resyncs(evs: &[WatchEvent]) -> usize {
    evs.iter()
        .filter(|e| matches!(e, WatchEvent::Resync { .. }))
        .count()
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn watches_auth_and_requests_survive_kill_and_freeze() {
    let ens = ensemble_with(&ENS, || Ensemble::builder().nodes(3));
    run(Duration::from_secs(600), async move {
        let leader = ens.wait_for_leader(WAIT).await.unwrap();
        let followers = ens.followers().await;
        assert_eq!(followers.len(), 2, "{followers:?}");
        let (f1, f2) = (followers[0], followers[1]);
        let addr = |i: usize| ens.node(i).client_addr();
        // The writer starts on the leader (steps 1 and 2 only take followers down) and can
        // fail over to any node.
        let x = ordered_client(&[addr(leader), addr(f1), addr(f2)], "").await;
        let open = acl::open_unsafe();
        for p in [
            "/fo",
            "/fo/d",
            "/fo/d2",
            "/fo/c",
            "/fo/p",
            "/fo/r",
            "/fo/quiet",
            "/fo/big",
        ] {
            x.create(p, "", &open, CreateMode::Persistent)
                .await
                .unwrap();
        }
        let w = ordered_client(&[addr(f1), addr(f2), addr(leader)], "/fo").await;
        assert_eq!(ens.node_for_addr(w.server().unwrap()), Some(f1));
        let sid = w.session_id();

        // Auth added at run time is re-sent on every reconnect.
        w.add_auth_digest("wuser", "pw").await.unwrap();
        w.create(
            "/sec",
            "secret",
            &acl::creator_all(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();

        // ---------- Step 1: kill −9 of the connected server ----------
        let (_, _, dw) = w.get_data_watch("/d").await.unwrap();
        let (none, ew) = w.exists_watch("/x").await.unwrap();
        assert!(none.is_none());
        let (_, cw) = w.get_children_watch("/c").await.unwrap();
        let mut pw = w.add_watch("/p", AddWatchMode::Persistent).await.unwrap();
        let mut rw = w
            .add_watch("/r", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let (_, _, mut quiet) = w.get_data_watch("/quiet").await.unwrap();

        let t_kill = Instant::now();
        ens.node(f1).kill().unwrap();
        // Changes made while the watcher's session is (or may be) disconnected.
        x.set_data("/fo/d", "1", -1).await.unwrap();
        x.create("/fo/x", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        x.create("/fo/c/k1", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        x.set_data("/fo/p", "1", -1).await.unwrap();
        x.create("/fo/r/a", "", &open, CreateMode::Persistent)
            .await
            .unwrap();

        expect_fired(dw, EventType::NodeDataChanged, "/d").await;
        expect_fired(ew, EventType::NodeCreated, "/x").await;
        expect_fired(cw, EventType::NodeChildrenChanged, "/c").await;
        let reconnect = wait_state(&w, |s| s == SessionState::Connected).await;
        eprintln!(
            "kill: reconnected {:?} after the kill; pause {:?}",
            t_kill.elapsed().saturating_sub(reconnect),
            w.counters().session.last_pause
        );
        assert_eq!(w.session_id(), sid);
        assert_ne!(ens.node_for_addr(w.server().unwrap()), Some(f1));
        // Persistent watches: the change either arrived live (reconnected first) or is
        // reported as a possible gap. Never twice.
        let p_evs = drain(&mut pw, QUIET).await;
        let changes = node_events(&p_evs)
            .iter()
            .filter(|(t, _)| *t == EventType::NodeDataChanged)
            .count();
        assert!(changes + resyncs(&p_evs) >= 1 && changes <= 1, "{p_evs:?}");
        let r_evs = drain(&mut rw, QUIET).await;
        let created = node_events(&r_evs).len();
        assert!(created + resyncs(&r_evs) >= 1 && created <= 1, "{r_evs:?}");
        // The quiet watcher saw the session go and come back, and nothing else.
        assert_eq!(
            quiet.next_event().await.unwrap().state,
            KeeperState::Disconnected
        );
        assert_eq!(
            quiet.next_event().await.unwrap().state,
            KeeperState::SyncConnected
        );
        // No duplicates: fresh watchers on the same nodes stay silent.
        let (_, _, dw) = w.get_data_watch("/d").await.unwrap();
        expect_silent(dw).await;
        // Auth came back with the session.
        assert_eq!(&w.get_data("/sec").await.unwrap().0[..], b"secret");
        // Persistent watchers keep working, one event per change.
        x.set_data("/fo/p", "2", -1).await.unwrap();
        x.create("/fo/r/a/b", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        let p_evs = drain(&mut pw, QUIET).await;
        assert_eq!(
            node_events(&p_evs),
            vec![(EventType::NodeDataChanged, "/p".to_owned())]
        );
        let r_evs = drain(&mut rw, QUIET).await;
        assert_eq!(
            node_events(&r_evs),
            vec![(EventType::NodeCreated, "/r/a/b".to_owned())]
        );
        ens.node(f1).restart().await.unwrap();
        ens.wait_serving_restarting_stuck(WAIT, WAIT * 3)
            .await
            .unwrap();

        // ---------- Step 2: freeze (SIGSTOP) of the connected server ----------
        let on = ens.node_for_addr(w.server().unwrap()).unwrap();
        assert_ne!(on, leader, "the watcher should be on a follower");
        let (_, _, dw) = w.get_data_watch("/d").await.unwrap();
        let (none, ew) = w.exists_watch("/y").await.unwrap();
        assert!(none.is_none());
        let (_, cw) = w.get_children_watch("/c").await.unwrap();
        let (_, _, mut quiet2) = w.get_data_watch("/quiet").await.unwrap();
        drop(quiet);
        let before = w.counters();

        let t_freeze = Instant::now();
        ens.node(on).freeze();
        // A watching read in flight on the frozen connection: answered only after the
        // reconnect, so the preamble could not carry it; the client re-arms it.
        let late = {
            let w = w.clone();
            tokio::spawn(async move { w.get_data_watch("/d2").await })
        };
        x.set_data("/fo/d", "2", -1).await.unwrap();
        x.create("/fo/y", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        x.create("/fo/c/k2", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        x.set_data("/fo/p", "3", -1).await.unwrap();
        x.create("/fo/r/c", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        let detected = wait_state(&w, |s| s == SessionState::Disconnected).await;
        let back = wait_state(&w, |s| s == SessionState::Connected).await;
        eprintln!(
            "freeze: detected after {:?}, session back after {:?} (pause {:?})",
            detected,
            t_freeze.elapsed(),
            w.counters().session.last_pause
        );
        let _ = back;
        assert_eq!(w.session_id(), sid);
        expect_fired(dw, EventType::NodeDataChanged, "/d").await;
        expect_fired(ew, EventType::NodeCreated, "/y").await;
        expect_fired(cw, EventType::NodeChildrenChanged, "/c").await;
        // Persistent watchers: the server does not replay, the client says so.
        let p_evs = drain(&mut pw, QUIET).await;
        assert_eq!(resyncs(&p_evs), 1, "{p_evs:?}");
        assert!(node_events(&p_evs).is_empty(), "{p_evs:?}");
        let r_evs = drain(&mut rw, QUIET).await;
        assert_eq!(resyncs(&r_evs), 1, "{r_evs:?}");
        assert!(node_events(&r_evs).is_empty(), "{r_evs:?}");
        if let Some(WatchEvent::Resync { from_zxid, to_zxid }) = p_evs
            .iter()
            .find(|e| matches!(e, WatchEvent::Resync { .. }))
        {
            assert!(to_zxid > from_zxid);
        }
        assert!(w.counters().watches.resyncs >= before.watches.resyncs + 2);
        assert_eq!(
            quiet2.next_event().await.unwrap().state,
            KeeperState::Disconnected
        );
        assert_eq!(
            quiet2.next_event().await.unwrap().state,
            KeeperState::SyncConnected
        );
        let (_, _, dw) = w.get_data_watch("/d").await.unwrap();
        let (_, ew) = w.exists_watch("/y").await.unwrap();
        expect_silent(dw).await;
        expect_silent(ew).await;
        let (_, _, late) = late.await.unwrap().unwrap();
        assert!(w.counters().watches.rearmed >= 1);
        x.set_data("/fo/d2", "1", -1).await.unwrap();
        expect_fired(late, EventType::NodeDataChanged, "/d2").await;
        let (_, _, again) = w.get_data_watch("/d2").await.unwrap();
        expect_silent(again).await;
        x.set_data("/fo/p", "4", -1).await.unwrap();
        let p_evs = drain(&mut pw, QUIET).await;
        assert_eq!(
            node_events(&p_evs),
            vec![(EventType::NodeDataChanged, "/p".to_owned())]
        );
        assert_eq!(&w.get_data("/sec").await.unwrap().0[..], b"secret");
        ens.node(on).thaw();
        ens.wait_serving_restarting_stuck(WAIT, WAIT * 3)
            .await
            .unwrap();
        drop(quiet2);

        // ---------- Step 3: more than 1 MiB of watch paths re-registered ----------
        let names: Vec<String> = (0..1100)
            .map(|i| format!("{i:04}-{}", "w".repeat(1000)))
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for (i, n) in names.iter().enumerate() {
            let w = w.clone();
            let path = format!("/big/{n}");
            set.spawn(async move { (i, w.exists_watch(&path).await.unwrap().1) });
        }
        let mut watchers: Vec<Option<OneshotWatcher>> = (0..names.len()).map(|_| None).collect();
        while let Some(r) = set.join_next().await {
            let (i, wt) = r.unwrap();
            watchers[i] = Some(wt);
        }
        let total_bytes: usize = names.iter().map(|n| n.len() + 5 + 3).sum();
        assert!(total_bytes > 1024 * 1024, "{total_bytes}");
        let before = w.counters().watches;
        let on = ens.node_for_addr(w.server().unwrap()).unwrap();
        ens.node(on).kill().unwrap();
        // Made during the disconnect: fires exactly once on re-registration.
        // (Possibly the leader went down: retry through the election.)
        loop {
            match x
                .create(
                    &format!("/fo/big/{}", names[0]),
                    "",
                    &open,
                    CreateMode::Persistent,
                )
                .await
            {
                Ok(_) | Err(Error::NodeExists) => break,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("{e}"),
            }
        }
        wait_state(&w, |s| s == SessionState::Connected).await;
        let w0 = watchers[0].take().unwrap();
        expect_fired(w0, EventType::NodeCreated, &format!("/big/{}", names[0])).await;
        let after = w.counters().watches;
        let packets = after.set_watches_packets - before.set_watches_packets;
        let bytes = after.set_watches_bytes - before.set_watches_bytes;
        eprintln!(
            "1 MiB re-registration (killed node {on}, leader {}): {packets} packets in {} \
             handshakes, {bytes} bytes, largest {} bytes, {} cached; pause {:?}",
            on == leader,
            after.preambles - before.preambles,
            after.set_watches_max_packet,
            after.preamble_cache_hits - before.preamble_cache_hits,
            w.counters().session.last_pause
        );
        assert!(packets >= 9, "{packets}");
        assert!(bytes > 1024 * 1024, "{bytes}");
        assert!(after.set_watches_max_packet <= 128 * 1024);
        for i in [1, 550, 1099] {
            x.create(
                &format!("/fo/big/{}", names[i]),
                "",
                &open,
                CreateMode::Persistent,
            )
            .await
            .unwrap();
            let wt = watchers[i].take().unwrap();
            expect_fired(wt, EventType::NodeCreated, &format!("/big/{}", names[i])).await;
        }
        // Untouched ones are still armed on the server.
        w.check_watches(&format!("/big/{}", names[777]), WatcherKind::Data)
            .await
            .unwrap();
        drop(watchers);
        ens.node(on).restart().await.unwrap();
        ens.wait_serving_restarting_stuck(WAIT, WAIT * 3)
            .await
            .unwrap();

        // ---------- Step 4: requests while the only server is frozen ----------
        let f = ens.followers().await[0];
        let y = ordered_client(&[addr(f)], "").await;
        y.create("/yy", "", &open, CreateMode::Ephemeral)
            .await
            .unwrap();
        ens.node(f).freeze();
        let t0 = Instant::now();
        let short = y.with_operation_timeout(Some(Duration::from_millis(500)));
        assert_eq!(short.get_data("/yy").await.unwrap_err(), Error::Timeout);
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        // A write in flight when the connection is declared dead: outcome unknown.
        let write = {
            let y = y.clone();
            tokio::spawn(async move { y.set_data("/yy", "w", -1).await })
        };
        // A read without deadline waits for the reconnect and is re-sent.
        let read = {
            let y = y.clone();
            tokio::spawn(async move { y.get_data("/yy").await })
        };
        tokio::time::sleep(Duration::from_millis(2000)).await;
        ens.node(f).thaw();
        let write = write.await.unwrap();
        assert!(
            matches!(
                write,
                Err(Error::ConnectionLoss {
                    outcome_unknown: true
                }) | Ok(_)
            ),
            "{write:?}"
        );
        eprintln!("write in flight across a freeze: {write:?}");
        read.await.unwrap().unwrap();
        assert!(y.state().is_connected());
        y.close().await;
        w.close().await;
        ens.wait_serving_restarting_stuck(WAIT, WAIT * 3)
            .await
            .unwrap();

        // ---------- Step 5: no server reachable for longer than the session lives ----------
        let f = ens.followers().await[0];
        let z = ordered_client(&[addr(f)], "").await;
        let (_, _, zw) = z.get_data_watch("/fo").await.unwrap();
        let mut zp = z
            .add_watch("/fo/p", AddWatchMode::Persistent)
            .await
            .unwrap();
        ens.node(f).kill().unwrap();
        let t0 = Instant::now();
        let mut states = z.state_stream();
        tokio::time::timeout(WAIT, states.wait_for(|s| s.state.is_terminal()))
            .await
            .unwrap()
            .unwrap();
        eprintln!("local expiry after {:?} (T = 4 s)", t0.elapsed());
        assert!(matches!(z.state(), SessionState::Expired { .. }));
        // Every watcher hears it, then ends.
        let ev = fired(zw, FIRE).await;
        assert_eq!(
            (ev.event_type, ev.state),
            (EventType::None, KeeperState::Expired)
        );
        let mut last = None;
        while let Some(ev) = zp.next().await {
            last = Some(ev);
        }
        assert!(
            matches!(&last, Some(WatchEvent::Event(e)) if e.state == KeeperState::Expired),
            "{last:?}"
        );
        let err = z.get_data("/fo").await.unwrap_err();
        assert!(matches!(err, Error::SessionExpired { .. }), "{err:?}");
        assert!(err.is_terminal());
        assert!(matches!(
            z.get_data_watch("/fo").await,
            Err(Error::SessionExpired { .. })
        ));
        ens.node(f).restart().await.unwrap();
    });
}
