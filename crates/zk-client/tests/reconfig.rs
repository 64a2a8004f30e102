//! Dynamic reconfiguration against a real 3-node ZooKeeper 3.8 ensemble started with
//! `reconfigEnabled=true` (and `zookeeper.skipACL=yes`, so no super user is needed to change
//! the membership): a follower is removed while a session sits on it and the session keeps
//! working with its ephemeral node (a 3.8 server that was removed keeps serving its clients
//! for a while, so the reads are checked for 3 s; a move would be transparent), `get_config`
//! and its watch see the new membership, a change based on a stale `from_config` version is
//! refused with `BadVersion`, and the server is added back (with its client address, which
//! a joining server must name).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use common::{client, ensemble_with, eventually, fired, run};
use zk_client::{Client, CreateMode, Error, EventType, Reconfig, SessionState, acl};
use zk_testkit::Ensemble;

static ENS: OnceLock<Ensemble> = OnceLock::new();

fn ens() -> &'static Ensemble {
    ensemble_with(&ENS, || {
        Ensemble::builder()
            .nodes(3)
            .config("reconfigEnabled", "true")
            .jvm_flag("-Dzookeeper.skipACL=yes")
    })
}

const LIMIT: Duration = Duration::from_secs(120);

/// The `server.N=…` line of `id` in a configuration, and the configuration's version.
fn parse(config: &[u8], id: usize) -> (Option<String>, i64) {
    let text = String::from_utf8_lossy(config);
    let prefix = format!("server.{id}=");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(str::to_owned);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .and_then(|v| i64::from_str_radix(v.trim(), 16).ok())
        .expect("a version line");
    (line, version)
}

/// A client whose session is on node `index` (tries fresh sessions until the shuffle puts
/// one there).
async fn client_on(index: usize) -> Client {
    let want = ens().node(index).client_addr();
    for _ in 0..30 {
        let c = client(&ens().direct_connect_string()).await;
        if c.server() == Some(want) {
            return c;
        }
        c.close().await;
    }
    panic!("no session landed on node {index}");
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn removing_the_sessions_server_keeps_the_session_and_adding_it_back_works() {
    run(LIMIT, async {
        let ens = ens();
        let leader = ens.wait_for_leader(Duration::from_secs(30)).await.unwrap();
        let victim = (leader + 1) % 3;
        let victim_id = ens.node(victim).id();

        let admin = client(&ens.direct_connect_string()).await;
        let (before, _) = admin.get_config().await.unwrap();
        let (victim_line, v0) = parse(&before, victim_id);
        let victim_line = victim_line.expect("the victim is a member");
        // A joining server names its client address too (the testkit's static config has
        // only `clientPort`, which the dynamic config does not list).
        let joining = if victim_line.contains(';') {
            victim_line.clone()
        } else {
            format!(
                "{victim_line};127.0.0.1:{}",
                ens.node(victim).client_addr().port()
            )
        };

        // A session on the server that will leave, with an ephemeral node and a watch on
        // the configuration.
        let moving = client_on(victim).await;
        let id = moving.session_id();
        moving
            .create(
                "/reconfig-eph",
                Bytes::from_static(b"mine"),
                &acl::open_unsafe(),
                CreateMode::Ephemeral,
            )
            .await
            .unwrap();
        let (_, _, config_watch) = moving.get_config_watch().await.unwrap();

        // Remove it.
        let (after, _) = admin
            .reconfig(
                Reconfig::Incremental {
                    joining: None,
                    leaving: Some(victim_id.to_string()),
                },
                None,
            )
            .await
            .unwrap();
        let (gone, v1) = parse(&after, victim_id);
        assert!(
            gone.is_none(),
            "server.{victim_id} still listed:\n{after:?}"
        );
        assert!(v1 > v0, "version {v1:#x} after {v0:#x}");
        // The watch set through the leaving server fires (on it or after the failover).
        let ev = fired(config_watch, Duration::from_secs(20)).await;
        assert_eq!(ev.event_type, EventType::NodeDataChanged);

        // The session keeps its ephemeral node and keeps working.
        assert!(
            eventually(Duration::from_secs(30), || async {
                moving
                    .exists("/reconfig-eph")
                    .await
                    .is_ok_and(|s| s.is_some())
            })
            .await
        );
        assert_eq!(moving.session_id(), id);
        assert_eq!(moving.state(), SessionState::Connected);
        // Whatever the removed server does next (3.8 lets it leave the quorum and stop
        // serving), the session keeps answering reads for the next seconds without an error:
        // reads lost in a move are re-sent.
        for _ in 0..30 {
            assert!(moving.exists("/reconfig-eph").await.unwrap().is_some());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "3 s after the removal: on {:?} (removed server {:?}), counters {:?}",
            moving.server(),
            ens.node(victim).client_addr(),
            moving.counters().session
        );
        moving
            .set_data("/reconfig-eph", &b"still mine"[..], -1)
            .await
            .unwrap();
        let (seen, _) = moving.get_config().await.unwrap();
        assert!(parse(&seen, victim_id).0.is_none());

        // A change based on a stale configuration version is refused.
        let stale = admin
            .reconfig(
                Reconfig::Incremental {
                    joining: Some(joining.clone()),
                    leaving: None,
                },
                Some(v0),
            )
            .await
            .unwrap_err();
        assert_eq!(stale, Error::BadVersion);

        // Add it back (with the current version as the precondition).
        let (back, _) = admin
            .reconfig(
                Reconfig::Incremental {
                    joining: Some(joining.clone()),
                    leaving: None,
                },
                Some(v1),
            )
            .await
            .unwrap();
        let (line, v2) = parse(&back, victim_id);
        assert!(line.is_some(), "server.{victim_id} not back:\n{back:?}");
        assert!(v2 > v1);

        // Both sessions still work, and the ephemeral node is still the moving session's.
        let (data, stat) = admin.get_data("/reconfig-eph").await.unwrap();
        assert_eq!(&data[..], b"still mine");
        assert_eq!(stat.ephemeral_owner, id);
        moving.close().await;
        assert!(
            eventually(Duration::from_secs(10), || async {
                admin
                    .exists("/reconfig-eph")
                    .await
                    .is_ok_and(|s| s.is_none())
            })
            .await
        );
        admin.close().await;
    });
}
