//! Replies above the client's inbound limit, against a real ZooKeeper 3.8 server: only the
//! call they answer fails, with `Error::ResponseTooLarge`; the calls around it succeed and the
//! connection is kept. (The Java client drops the whole connection on such a frame and, since
//! the application usually retries the same read, can loop forever.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{ensemble_with, run};
use zk_client::{Client, CreateMode, Error, EventType, SessionState, acl};
use zk_testkit::Ensemble;

static ENS: OnceLock<Ensemble> = OnceLock::new();

const LIMIT: Duration = Duration::from_secs(120);
const MAX_INBOUND: usize = 64 * 1024;

fn ens() -> &'static Ensemble {
    ensemble_with(&ENS, || Ensemble::builder().nodes(1))
}

async fn small_inbound_client() -> Client {
    Client::builder(&ens().connect_string())
        .session_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(20))
        .configure_session(|cfg| cfg.max_inbound_frame = MAX_INBOUND)
        .connect()
        .await
        .unwrap()
}

fn too_large(r: &Result<impl std::fmt::Debug, Error>, at_least: usize) {
    match r {
        Err(Error::ResponseTooLarge { len, max }) => {
            assert_eq!(*max, MAX_INBOUND);
            assert!(*len >= at_least, "announced {len}");
        }
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn oversized_data_and_children_fail_only_their_calls() {
    run(LIMIT, async {
        let c = small_inbound_client().await;
        let base = format!("/oversized-{:x}", c.session_id());
        c.create(&base, &b""[..], &acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        let big = format!("{base}/big");
        c.create(
            &big,
            vec![7_u8; 100 * 1024],
            &acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        let many = format!("{base}/many");
        c.create(&many, &b""[..], &acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        let name = "n".repeat(150);
        for i in 0..600 {
            c.create(
                &format!("{many}/{name}{i}"),
                &b""[..],
                &acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
        }

        // Pipelined: small, big data, small, big children list, small.
        let (a, b, d, e, f) = tokio::join!(
            c.exists("/"),
            c.get_data(&big),
            c.get_data(&base),
            c.get_children(&many),
            c.get_children(&base),
        );
        assert!(a.unwrap().is_some());
        too_large(&b, 100 * 1024);
        assert_eq!(d.unwrap().0.len(), 0);
        too_large(&e, MAX_INBOUND);
        let mut kids = f.unwrap();
        kids.sort();
        assert_eq!(kids, vec!["big".to_owned(), "many".to_owned()]);

        // Again and again: no reconnect loop, the session and connection stay.
        for _ in 0..5 {
            too_large(&c.get_data(&big).await, 100 * 1024);
        }
        // A watch set by a read whose reply was too large: the call failed, and a watch that
        // does fit works normally afterwards.
        too_large(
            &c.get_data_watch(&big).await.map(|(d, s, _)| (d, s)),
            100 * 1024,
        );
        let (_, stat, w) = c.get_data_watch(&base).await.unwrap();
        c.set_data(&base, &b"x"[..], stat.version).await.unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .unwrap();
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        // Changing the big node (whose watch the server may hold) disturbs nothing.
        c.set_data(&big, &b"small now"[..], -1).await.unwrap();
        assert_eq!(&c.get_data(&big).await.unwrap().0[..], b"small now");

        let counters = c.counters().session;
        assert_eq!(
            counters.reconnects, 0,
            "the connection was kept: {counters:?}"
        );
        assert_eq!(counters.failed_attempts, 0);
        assert_eq!(c.state(), SessionState::Connected);
        c.close().await;
    });
}
