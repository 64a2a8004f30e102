//! Read-only mode against a real 3-node ZooKeeper 3.8 ensemble started with
//! `readonlymode.enabled` (and the local sessions 3.8 needs): two of three nodes killed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{catch_up, client, ensemble_with, eventually, fired, run};
use zk_client::{Client, CreateMode, Error, EventType, SessionState, acl};
use zk_testkit::Ensemble;

static ENS: OnceLock<Ensemble> = OnceLock::new();
const WAIT: Duration = Duration::from_secs(60);

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn reads_on_a_read_only_server_and_back_to_read_write() {
    let ens = ensemble_with(&ENS, || Ensemble::builder().nodes(3).read_only(true));
    run(Duration::from_secs(400), async move {
        let writer = client(&ens.connect_string()).await;
        writer
            .create("/ro", "before", &acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        drop(writer);

        // Keep one follower; kill the leader and the other follower.
        let leader = ens.wait_for_leader(WAIT).await.unwrap();
        let survivor = ens.followers().await[0];
        // The survivor must have applied /ro before it loses the quorum (the writer may have
        // been answered by another server).
        let on_survivor = client(&ens.node(survivor).client_addr().to_string()).await;
        catch_up(&on_survivor).await;
        drop(on_survivor);
        let others: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
        for &i in &others {
            ens.node(i).kill().unwrap();
        }
        let _ = leader;
        assert!(
            eventually(WAIT, || async {
                ens.node(survivor).four_letter("isro").await.ok().as_deref() == Some("ro")
            })
            .await,
            "the survivor did not become read-only"
        );

        // Without can_be_read_only no session can be had.
        let err = Client::builder(&ens.connect_string())
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectTimeout { .. }), "{err:?}");

        let c = Client::builder(&ens.connect_string())
            .session_timeout(Duration::from_secs(4))
            .can_be_read_only(true)
            .connect_timeout(WAIT)
            .connect()
            .await
            .unwrap();
        assert_eq!(c.state(), SessionState::ConnectedReadOnly);
        assert_eq!(ens.node_for_addr(c.server().unwrap()), Some(survivor));
        // Reads work.
        assert_eq!(&c.get_data("/ro").await.unwrap().0[..], b"before");
        assert!(c.exists("/ro").await.unwrap().is_some());
        c.get_children("/").await.unwrap();
        let (_, _, watcher) = c.get_data_watch("/ro").await.unwrap();
        // Writes (and sync) get a typed error; the connection stays.
        assert_eq!(
            c.create("/ro/x", "", &acl::open_unsafe(), CreateMode::Persistent)
                .await
                .unwrap_err(),
            Error::NotReadOnly
        );
        assert_eq!(
            c.set_data("/ro", "x", -1).await.unwrap_err(),
            Error::NotReadOnly
        );
        assert_eq!(c.delete("/ro", -1).await.unwrap_err(), Error::NotReadOnly);
        assert_eq!(c.sync("/ro").await.unwrap_err(), Error::NotReadOnly);
        assert_eq!(c.state(), SessionState::ConnectedReadOnly);
        assert_eq!(c.counters().session.reconnects, 0);

        // The quorum comes back: the client moves to a read-write server with a new session,
        // re-registers its watch there, and writes work.
        for &i in &others {
            ens.node(i).restart().await.unwrap();
        }
        let mut states = c.state_stream();
        tokio::time::timeout(
            WAIT,
            states.wait_for(|s| s.state == SessionState::Connected),
        )
        .await
        .expect("never moved to a read-write server")
        .unwrap();
        c.create("/ro/after", "", &acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        let other = client(&ens.connect_string()).await;
        other.set_data("/ro", "changed", -1).await.unwrap();
        let ev = fired(watcher, Duration::from_secs(15)).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/ro")
        );
    });
}
