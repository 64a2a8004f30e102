//! Every operation against a real 3-node ZooKeeper 3.8 ensemble (no faults injected here;
//! see `failover.rs` and `read_only.rs`). One ensemble for the whole binary; each test works
//! under its own path.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use common::{catch_up, client, drain, ensemble_with, eventually, fired, next_node, run};
use zk_client::acl::{self, IdExt};
use zk_client::{
    AddWatchMode, Client, CreateMode, Error, ErrorCode, EventType, Id, KeeperState, Op, OpResult,
    ReadOp, ReadResult, Reconfig, SessionState, WatchEvent, WatcherKind,
};
use zk_testkit::Ensemble;

static ENS: OnceLock<Ensemble> = OnceLock::new();

fn ens() -> &'static Ensemble {
    ensemble_with(&ENS, || {
        Ensemble::builder()
            .nodes(3)
            // TTL nodes, and a fast container/TTL reaper.
            .jvm_flag("-Dzookeeper.extendedTypesEnabled=true")
            .jvm_flag("-Dznode.container.checkIntervalMs=300")
    })
}

const LIMIT: Duration = Duration::from_secs(120);
const FIRE: Duration = Duration::from_secs(10);

async fn root() -> Client {
    client(&ens().connect_string()).await
}

/// Creates `path` (and nothing else) if missing.
async fn ensure(c: &Client, path: &str) {
    match c
        .create(
            path,
            Bytes::new(),
            &acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => panic!("create {path}: {e}"),
    }
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn crud_and_error_cases() {
    run(LIMIT, async {
        let c = root().await;
        assert_eq!(c.state(), SessionState::Connected);
        assert_ne!(c.session_id(), 0);
        assert_eq!(c.session_password().len(), 16);
        assert!(!format!("{c:?}").contains(&format!("{:?}", c.session_password())));
        let open = acl::open_unsafe();

        // create / create2 / get / set / exists / delete.
        assert_eq!(
            c.create("/crud", "root", &open, CreateMode::Persistent)
                .await
                .unwrap(),
            "/crud"
        );
        let (p, stat) = c
            .create2("/crud/a", "v0", &open, CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(p, "/crud/a");
        assert_eq!(stat.version, 0);
        assert_eq!(stat.data_length, 2);
        let (data, stat) = c.get_data("/crud/a").await.unwrap();
        assert_eq!(&data[..], b"v0");
        let stat2 = c.set_data("/crud/a", "v1", stat.version).await.unwrap();
        assert_eq!(stat2.version, 1);
        assert_eq!(
            c.set_data("/crud/a", "v2", 0).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(c.exists("/crud/a").await.unwrap().unwrap().version, 1);
        assert_eq!(c.exists("/crud/none").await.unwrap(), None);
        assert_eq!(c.get_data("/crud/none").await.unwrap_err(), Error::NoNode);
        assert_eq!(
            c.set_data("/crud/none", "x", -1).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            c.create("/crud/a", "", &open, CreateMode::Persistent)
                .await
                .unwrap_err(),
            Error::NodeExists
        );
        assert_eq!(
            c.create("/crud/no/parent", "", &open, CreateMode::Persistent)
                .await
                .unwrap_err(),
            Error::NoNode
        );
        // An empty node reads as empty bytes.
        c.create("/crud/empty", Bytes::new(), &open, CreateMode::Persistent)
            .await
            .unwrap();
        assert!(c.get_data("/crud/empty").await.unwrap().0.is_empty());

        // Sequential and ephemeral.
        let s1 = c
            .create("/crud/seq-", "", &open, CreateMode::PersistentSequential)
            .await
            .unwrap();
        let s2 = c
            .create("/crud/seq-", "", &open, CreateMode::PersistentSequential)
            .await
            .unwrap();
        assert!(s1.starts_with("/crud/seq-") && s1.len() == "/crud/seq-".len() + 10);
        assert!(s2 > s1);
        let e = c
            .create("/crud/eph", "", &open, CreateMode::Ephemeral)
            .await
            .unwrap();
        let es = c
            .create("/crud/eph-", "", &open, CreateMode::EphemeralSequential)
            .await
            .unwrap();
        assert_eq!(
            c.exists(&e).await.unwrap().unwrap().ephemeral_owner,
            c.session_id()
        );
        assert_eq!(
            c.create("/crud/eph/child", "", &open, CreateMode::Persistent)
                .await
                .unwrap_err(),
            Error::NoChildrenForEphemerals
        );
        let mut eph = c.get_ephemerals("/crud").await.unwrap();
        eph.sort();
        assert_eq!(eph, vec![e.clone(), es.clone()]);
        assert!(c.get_ephemerals("/").await.unwrap().contains(&e));

        // Children.
        let mut kids = c.get_children("/crud").await.unwrap();
        kids.sort();
        assert_eq!(kids.len(), 6, "{kids:?}");
        assert!(kids.contains(&"a".to_owned()));
        let (kids2, stat) = c.get_children2("/crud").await.unwrap();
        assert_eq!(kids2.len(), 6);
        assert_eq!(stat.num_children, 6);
        assert_eq!(
            c.get_children("/crud/none").await.unwrap_err(),
            Error::NoNode
        );
        c.create("/crud/a/deep", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(c.get_all_children_number("/crud").await.unwrap(), 7);
        assert_eq!(
            c.get_all_children_number("/crud/none").await.unwrap_err(),
            Error::NoNode
        );

        // Delete: not empty, bad version, ok.
        assert_eq!(c.delete("/crud/a", -1).await.unwrap_err(), Error::NotEmpty);
        assert_eq!(
            c.delete("/crud/a/deep", 5).await.unwrap_err(),
            Error::BadVersion
        );
        c.delete("/crud/a/deep", 0).await.unwrap();
        c.delete("/crud/a", -1).await.unwrap();
        assert_eq!(c.delete("/crud/a", -1).await.unwrap_err(), Error::NoNode);

        // sync, whoAmI, getConfig, reconfig (disabled on this ensemble; `reconfig.rs` changes
        // the membership of one with reconfigEnabled=true).
        c.sync("/crud").await.unwrap();
        let me = c.who_am_i().await.unwrap();
        assert!(me.iter().any(|i| i.auth_scheme == "ip"), "{me:?}");
        let (config, _) = c.get_config().await.unwrap();
        let config = String::from_utf8_lossy(&config).into_owned();
        assert!(config.contains("server.1="), "{config}");
        assert_eq!(
            c.reconfig(
                Reconfig::Incremental {
                    joining: None,
                    leaving: Some("3".into())
                },
                None
            )
            .await
            .unwrap_err(),
            Error::ReconfigDisabled
        );

        // Invalid paths are refused before anything is sent.
        for bad in ["", "nope", "/a/", "/a//b", "/a/./b", "/a\u{0}b"] {
            assert!(
                matches!(c.get_data(bad).await, Err(Error::InvalidPath { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            c.create("/crud/x/", "", &open, CreateMode::Persistent)
                .await,
            Err(Error::InvalidPath { .. })
        ));
        // ... but a sequential create may end with '/'.
        c.create("/crud/q", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        let q = c
            .create("/crud/q/", "", &open, CreateMode::PersistentSequential)
            .await
            .unwrap();
        assert!(q.starts_with("/crud/q/00"), "{q}");

        c.close().await;
        assert_eq!(c.state(), SessionState::Closed);
        assert_eq!(c.get_data("/crud").await.unwrap_err(), Error::Closed);
        // Ephemerals went with the session.
        let other = root().await;
        catch_up(&other).await;
        assert_eq!(other.exists(&e).await.unwrap(), None);
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn chroot_everywhere() {
    run(LIMIT, async {
        let r = root().await;
        ensure(&r, "/chroot").await;
        let cs = format!("{}/chroot", ens().connect_string());
        let c = client(&cs).await;
        assert_eq!(c.chroot().unwrap().as_str(), "/chroot");
        let open = acl::open_unsafe();
        assert_eq!(
            c.create("/a", "x", &open, CreateMode::Persistent)
                .await
                .unwrap(),
            "/a"
        );
        catch_up(&r).await;
        assert_eq!(r.get_data("/chroot/a").await.unwrap().0, Bytes::from("x"));
        let seq = c
            .create("/a/s-", "", &open, CreateMode::EphemeralSequential)
            .await
            .unwrap();
        assert!(seq.starts_with("/a/s-"), "{seq}");
        let (p, _) = c
            .create2("/b", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(p, "/b");
        assert_eq!(c.get_ephemerals("/").await.unwrap(), vec![seq.clone()]);
        let mut kids = c.get_children("/").await.unwrap();
        kids.sort();
        assert_eq!(kids, vec!["a", "b"]);
        assert!(c.exists("/").await.unwrap().is_some());

        // Watch events come back stripped.
        let (_, _, w) = c.get_data_watch("/a").await.unwrap();
        let (_, cw) = c.get_children_watch("/").await.unwrap();
        let mut pw = c
            .add_watch("/b", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        r.set_data("/chroot/a", "y", -1).await.unwrap();
        let ev = fired(w, FIRE).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/a")
        );
        r.create("/chroot/c", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        let ev = fired(cw, FIRE).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeChildrenChanged, "/")
        );
        r.create("/chroot/b/x", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        match next_node(&mut pw, FIRE).await.unwrap() {
            WatchEvent::Event(e) => {
                assert_eq!(
                    (e.event_type, e.path.as_str()),
                    (EventType::NodeCreated, "/b/x")
                );
            }
            other => panic!("{other:?}"),
        }

        // Multi results are stripped too.
        let results = c
            .multi(vec![
                Op::create("/m", "", open.clone(), CreateMode::Persistent),
                Op::create("/m/s-", "", open.clone(), CreateMode::PersistentSequential),
            ])
            .await
            .unwrap();
        match &results[..] {
            [
                OpResult::Create { path: a, .. },
                OpResult::Create { path: b, .. },
            ] => {
                assert_eq!(a, "/m");
                assert!(b.starts_with("/m/s-"), "{b}");
            }
            other => panic!("{other:?}"),
        }
        // getConfig is never chrooted.
        assert!(!c.get_config().await.unwrap().0.is_empty());
        c.sync("/").await.unwrap();
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn multi_and_multi_read() {
    run(LIMIT, async {
        let c = root().await;
        let open = acl::open_unsafe();
        ensure(&c, "/multi").await;
        let results = c
            .multi(vec![
                Op::create("/multi/a", "1", open.clone(), CreateMode::Persistent),
                Op::check("/multi/a", 0),
                Op::set_data("/multi/a", "2", 0),
                Op::create("/multi/b", "", open.clone(), CreateMode::Persistent),
                Op::delete("/multi/b", 0),
            ])
            .await
            .unwrap();
        assert_eq!(results.len(), 5);
        assert!(
            matches!(&results[0], OpResult::Create { path, stat } if path == "/multi/a" && stat.version == 0)
        );
        assert_eq!(results[1], OpResult::Check);
        assert!(matches!(&results[2], OpResult::SetData { stat } if stat.version == 1));
        assert_eq!(results[4], OpResult::Delete);
        assert_eq!(c.get_data("/multi/a").await.unwrap().0, Bytes::from("2"));
        assert_eq!(c.exists("/multi/b").await.unwrap(), None);

        // A failing op: nothing is applied, per-op results tell which failed.
        let err = c
            .multi(vec![
                Op::create("/multi/c", "", open.clone(), CreateMode::Persistent),
                Op::check("/multi/a", 7),
                Op::delete("/multi/a", -1),
            ])
            .await
            .unwrap_err();
        match err {
            Error::MultiFailed {
                index,
                error,
                results,
            } => {
                assert_eq!(index, 1);
                assert_eq!(*error, Error::BadVersion);
                assert_eq!(results[0], OpResult::RolledBack);
                assert_eq!(results[1], OpResult::Error(Error::BadVersion));
                assert_eq!(results[2], OpResult::Error(Error::RuntimeInconsistency));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.exists("/multi/c").await.unwrap(), None);
        assert!(c.exists("/multi/a").await.unwrap().is_some());
        let err = c
            .multi(vec![Op::delete("/multi/none", -1)])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NoNode));
        assert!(c.multi(vec![]).await.unwrap().is_empty());

        // multiRead: each read on its own.
        let reads = c
            .multi_read(vec![
                ReadOp::get_data("/multi/a"),
                ReadOp::get_children("/multi"),
                ReadOp::get_data("/multi/none"),
            ])
            .await
            .unwrap();
        assert!(
            matches!(&reads[0], Ok(ReadResult::Data { data, .. }) if data == &Bytes::from("2"))
        );
        assert!(matches!(&reads[1], Ok(ReadResult::Children(k)) if k == &vec!["a".to_owned()]));
        assert_eq!(reads[2], Err(Error::NoNode));
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn ttl_and_container_nodes() {
    run(LIMIT, async {
        let c = root().await;
        let open = acl::open_unsafe();
        ensure(&c, "/ttl").await;
        let (p, stat) = c
            .create_ttl("/ttl/t", "x", &open, Duration::from_millis(500), false)
            .await
            .unwrap();
        assert_eq!(p, "/ttl/t");
        assert_eq!(stat.version, 0);
        let (ps, _) = c
            .create_ttl("/ttl/s-", "", &open, Duration::from_millis(500), true)
            .await
            .unwrap();
        assert!(ps.starts_with("/ttl/s-"));
        assert!(matches!(
            c.create_ttl("/ttl/zero", "", &open, Duration::ZERO, false)
                .await,
            Err(Error::InvalidArgument { .. })
        ));
        assert!(
            eventually(Duration::from_secs(30), || async {
                c.exists("/ttl/t").await.unwrap().is_none()
            })
            .await,
            "TTL node was not reaped"
        );

        let (cp, _) = c
            .create2("/ttl/container", "", &open, CreateMode::Container)
            .await
            .unwrap();
        assert_eq!(cp, "/ttl/container");
        c.create("/ttl/container/child", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            c.exists("/ttl/container").await.unwrap().is_some(),
            "reaped with a child"
        );
        c.delete("/ttl/container/child", -1).await.unwrap();
        assert!(
            eventually(Duration::from_secs(30), || async {
                c.exists("/ttl/container").await.unwrap().is_none()
            })
            .await,
            "container was not reaped"
        );
        // `create` with Container mode also works (and returns the path).
        assert_eq!(
            c.create("/ttl/c2", "", &open, CreateMode::Container)
                .await
                .unwrap(),
            "/ttl/c2"
        );
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn add_auth_does_not_wait_for_requests_in_flight() {
    run(LIMIT, async {
        let c = root().await;
        ensure(&c, "/auth-inflight").await;
        // Hundreds of reads in flight; the server answers the auth packet as soon as it
        // reads it, ahead of some of them. That must not look like a protocol error.
        let reads: Vec<_> = (0..400)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.get_data("/auth-inflight").await.map(|_| ()) })
            })
            .collect();
        tokio::task::yield_now().await;
        c.add_auth_digest("carol", "pw").await.unwrap();
        for r in reads {
            r.await.unwrap().unwrap();
        }
        let me = c.who_am_i().await.unwrap();
        assert!(
            me.iter()
                .any(|i| i.auth_scheme == "digest" && i.user == "carol"),
            "{me:?}"
        );
        let counters = c.counters().session;
        assert_eq!(counters.reconnects, 0, "connection kept: {counters:?}");
        c.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn acls_and_digest_auth() {
    run(LIMIT, async {
        let open = acl::open_unsafe();
        let owner = root().await;
        ensure(&owner, "/acl").await;
        owner.add_auth_digest("alice", "secret").await.unwrap();
        let me = owner.who_am_i().await.unwrap();
        assert!(
            me.iter()
                .any(|i| i.auth_scheme == "digest" && i.user == "alice"),
            "{me:?}"
        );
        owner
            .create(
                "/acl/private",
                "s3cret",
                &acl::creator_all(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
        let (acl_list, _) = owner.get_acl("/acl/private").await.unwrap();
        assert_eq!(acl_list.len(), 1);
        assert_eq!(acl_list[0].id, Id::digest("alice", "secret"));
        assert_eq!(acl_list[0].perms, zk_client::perms::ALL);

        let stranger = root().await;
        // Sessions on different servers: ZooKeeper orders each session's view, not views
        // across sessions, so a session catches up before reading another one's fresh write
        // (a lagging follower answered NoAuth for an ACL already changed, once in CI).
        catch_up(&stranger).await;
        assert_eq!(
            stranger.get_data("/acl/private").await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            stranger
                .set_data("/acl/private", "x", -1)
                .await
                .unwrap_err(),
            Error::NoAuth
        );
        // creator_all without any auth is an invalid ACL.
        assert_eq!(
            stranger
                .create("/acl/x", "", &acl::creator_all(), CreateMode::Persistent)
                .await
                .unwrap_err(),
            Error::InvalidAcl
        );
        // Wrong password: the digest is accepted as an identity, but not alice's.
        stranger.add_auth_digest("alice", "wrong").await.unwrap();
        assert_eq!(
            stranger.get_data("/acl/private").await.unwrap_err(),
            Error::NoAuth
        );

        // Auth given up front in the builder.
        let alice = Client::builder(&ens().connect_string())
            .session_timeout(Duration::from_secs(4))
            .digest_auth("alice", "secret")
            .connect()
            .await
            .unwrap();
        catch_up(&alice).await;
        assert_eq!(
            alice.get_data("/acl/private").await.unwrap().0,
            Bytes::from("s3cret")
        );

        // set_acl with a digest id built client-side; read-only for everyone else.
        let mut list = acl::digest_all("bob", "pw");
        list.extend(acl::read_unsafe());
        let (_, stat) = owner.get_acl("/acl/private").await.unwrap();
        assert_eq!(
            owner
                .set_acl("/acl/private", &list, stat.aversion + 1)
                .await
                .unwrap_err(),
            Error::BadVersion
        );
        owner
            .set_acl("/acl/private", &list, stat.aversion)
            .await
            .unwrap();
        // alice gave up ADMIN on it.
        assert_eq!(
            owner.set_acl("/acl/private", &list, -1).await.unwrap_err(),
            Error::NoAuth
        );
        catch_up(&stranger).await;
        assert_eq!(
            stranger.get_data("/acl/private").await.unwrap().0,
            Bytes::from("s3cret")
        );
        assert_eq!(
            stranger
                .set_data("/acl/private", "x", -1)
                .await
                .unwrap_err(),
            Error::NoAuth
        );
        stranger.add_auth_digest("bob", "pw").await.unwrap();
        stranger
            .set_data("/acl/private", "by bob", -1)
            .await
            .unwrap();
        assert_eq!(
            owner.set_acl("/acl/none", &open, -1).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            owner.set_acl("/acl", &[], -1).await.unwrap_err(),
            Error::InvalidAcl
        );
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn one_shot_and_persistent_watches() {
    run(LIMIT, async {
        let c = root().await;
        let w = root().await;
        let open = acl::open_unsafe();
        ensure(&c, "/w").await;
        c.create("/w/d", "0", &open, CreateMode::Persistent)
            .await
            .unwrap();

        // Data watch: fires once on a change.
        catch_up(&w).await;
        let (_, _, dw) = w.get_data_watch("/w/d").await.unwrap();
        c.set_data("/w/d", "1", -1).await.unwrap();
        c.set_data("/w/d", "2", -1).await.unwrap();
        let ev = fired(dw, FIRE).await;
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        assert_eq!(ev.state, KeeperState::SyncConnected);
        assert_eq!(ev.path, "/w/d");

        // Exists watch on a missing node: NodeCreated. Child watch: NodeChildrenChanged.
        let (none, ew) = w.exists_watch("/w/new").await.unwrap();
        assert!(none.is_none());
        let (_, cw) = w.get_children_watch("/w").await.unwrap();
        c.create("/w/new", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(fired(ew, FIRE).await.event_type, EventType::NodeCreated);
        let ev = fired(cw, FIRE).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeChildrenChanged, "/w")
        );

        // Deletion fires data, exists (on an existing node) and child watches.
        let (_, _, dw) = w.get_data_watch("/w/new").await.unwrap();
        let (some, ew) = w.exists_watch("/w/new").await.unwrap();
        assert!(some.is_some());
        let (_, _, cw) = w.get_children2_watch("/w/new").await.unwrap();
        c.delete("/w/new", -1).await.unwrap();
        for watcher in [dw, ew, cw] {
            assert_eq!(
                fired(watcher, FIRE).await.event_type,
                EventType::NodeDeleted
            );
        }

        // A failing read leaves no watch behind.
        assert_eq!(
            w.get_data_watch("/w/none").await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            w.get_children_watch("/w/none").await.unwrap_err(),
            Error::NoNode
        );

        // Persistent: every change of the node, until removed.
        c.create("/w/p", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        // (w may sit on another server than c: catch up, or the watch can be set before that
        // server applied the create, and report it.)
        catch_up(&w).await;
        let mut pw = w.add_watch("/w/p", AddWatchMode::Persistent).await.unwrap();
        for i in 0..3 {
            c.set_data("/w/p", format!("{i}"), -1).await.unwrap();
        }
        c.create("/w/p/kid", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        let evs = drain(&mut pw, Duration::from_secs(2)).await;
        let types: Vec<_> = evs
            .iter()
            .map(|e| match e {
                WatchEvent::Event(e) => e.event_type,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            types,
            vec![
                EventType::NodeDataChanged,
                EventType::NodeDataChanged,
                EventType::NodeDataChanged,
                EventType::NodeChildrenChanged
            ]
        );
        w.check_watches("/w/p", WatcherKind::Any).await.unwrap();
        w.remove_watches("/w/p", WatcherKind::Persistent)
            .await
            .unwrap();
        match pw.next().await {
            Some(WatchEvent::Event(e)) => {
                assert_eq!(e.event_type, EventType::PersistentWatchRemoved);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pw.next().await, None);
        assert_eq!(
            w.check_watches("/w/p", WatcherKind::Any).await.unwrap_err(),
            Error::NoWatcher
        );
        assert_eq!(
            w.remove_watches("/w/p", WatcherKind::Any)
                .await
                .unwrap_err(),
            Error::NoWatcher
        );

        // Recursive: created / changed / deleted anywhere below, no child events.
        c.create("/w/r", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        catch_up(&w).await;
        let mut rw = w
            .add_watch("/w/r", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        c.create("/w/r/a", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        c.create("/w/r/a/b", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        c.set_data("/w/r/a/b", "x", -1).await.unwrap();
        c.delete("/w/r/a/b", -1).await.unwrap();
        let evs = drain(&mut rw, Duration::from_secs(2)).await;
        let got: Vec<_> = evs
            .iter()
            .map(|e| match e {
                WatchEvent::Event(e) => (e.event_type, e.path.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (EventType::NodeCreated, "/w/r/a".to_owned()),
                (EventType::NodeCreated, "/w/r/a/b".to_owned()),
                (EventType::NodeDataChanged, "/w/r/a/b".to_owned()),
                (EventType::NodeDeleted, "/w/r/a/b".to_owned()),
            ]
        );

        // Dropping an unfired watcher removes the server's watch.
        let (_, _, dropped) = w.get_data_watch("/w/d").await.unwrap();
        w.check_watches("/w/d", WatcherKind::Data).await.unwrap();
        let removals = w.counters().watches.removals;
        drop(dropped);
        assert_eq!(w.counters().watches.removals, removals + 1);
        assert!(
            eventually(Duration::from_secs(10), || async {
                w.check_watches("/w/d", WatcherKind::Data).await == Err(Error::NoWatcher)
            })
            .await
        );
        // Dropping the recursive watcher too; another recursive watch still works after.
        drop(rw);
        let mut rw2 = w
            .add_watch("/w/r", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        c.create("/w/r/z", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        assert!(matches!(
            next_node(&mut rw2, FIRE).await,
            Some(WatchEvent::Event(e)) if e.path == "/w/r/z"
        ));

        // Closing ends every watcher with a Closed event.
        let (_, _, dw) = w.get_data_watch("/w/d").await.unwrap();
        w.close().await;
        let ev = fired(dw, FIRE).await;
        assert_eq!(
            (ev.event_type, ev.state),
            (EventType::None, KeeperState::Closed)
        );
        match next_node(&mut rw2, FIRE).await {
            Some(WatchEvent::Event(e)) => assert_eq!(e.state, KeeperState::Closed),
            other => panic!("{other:?}"),
        }
        assert_eq!(rw2.next().await, None);
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn pipelining_with_a_bounded_window() {
    run(LIMIT, async {
        let c = Client::builder(&ens().connect_string())
            .session_timeout(Duration::from_secs(4))
            .max_in_flight(16)
            .connect()
            .await
            .unwrap();
        let open = acl::open_unsafe();
        ensure(&c, "/pipe").await;
        c.create("/pipe/n", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..2000u32 {
            let c = c.clone();
            set.spawn(async move {
                if i % 2 == 0 {
                    c.set_data("/pipe/n", i.to_string(), -1)
                        .await
                        .map(|s| s.mzxid)
                } else {
                    c.get_data("/pipe/n").await.map(|(_, s)| s.mzxid)
                }
            });
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
            ok += 1;
        }
        assert_eq!(ok, 2000);
        let elapsed = started.elapsed();
        eprintln!("2000 pipelined ops (window 16) in {elapsed:?}");
        assert_eq!(c.get_data("/pipe/n").await.unwrap().1.version, 1000);

        // Replies resolve in order: one task issuing reads back to back on a single
        // handle sees non-decreasing zxids.
        let mut last = 0;
        for _ in 0..50 {
            let (_, stat) = c.get_data("/pipe/n").await.unwrap();
            assert!(stat.mzxid >= last);
            last = stat.mzxid;
        }
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn client_side_errors_and_session_lifecycle() {
    run(LIMIT, async {
        assert!(matches!(
            Client::connect("").await,
            Err(Error::InvalidConnectString(_))
        ));
        // Nothing listens there: a typed timeout.
        let t0 = std::time::Instant::now();
        let err = Client::builder("127.0.0.1:1")
            .connect_timeout(Duration::from_millis(800))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ConnectTimeout { after, .. } if after == Duration::from_millis(800)),
            "{err:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));

        // Resume a saved session from "another process".
        let a = root().await;
        a.create("/resumed", "", &acl::open_unsafe(), CreateMode::Ephemeral)
            .await
            .unwrap();
        let saved = a.saved_session();
        assert!(format!("{saved:?}").contains("redacted"));
        let b = Client::builder(&ens().connect_string())
            .session_timeout(Duration::from_secs(4))
            .resume(saved.clone())
            .connect()
            .await
            .unwrap();
        assert_eq!(b.session_id(), a.session_id());
        catch_up(&b).await;
        assert_eq!(
            b.get_ephemerals("/").await.unwrap(),
            vec!["/resumed".to_owned()]
        );
        // Closing through one handle ends the session for both.
        b.close().await;
        let third = root().await;
        catch_up(&third).await;
        assert_eq!(third.exists("/resumed").await.unwrap(), None);
        // A closed session cannot be resumed.
        let err = Client::builder(&ens().connect_string())
            .resume(saved)
            .connect_timeout(Duration::from_secs(20))
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SessionExpired { .. }), "{err:?}");

        // Dropping the last handle closes the session: its ephemerals vanish at once.
        let d = root().await;
        d.create("/dropped", "", &acl::open_unsafe(), CreateMode::Ephemeral)
            .await
            .unwrap();
        let d2 = d.clone();
        drop(d);
        // The clone still has the session: it can write, and its ephemerals stay. (Another
        // session's view needs a catch-up first: on ZooKeeper 3.8 a plain `sync` served by
        // the leader can miss the create — that is how this check once failed in CI.)
        d2.create("/dropped-2", "", &acl::open_unsafe(), CreateMode::Ephemeral)
            .await
            .unwrap();
        catch_up(&third).await;
        for p in ["/dropped", "/dropped-2"] {
            assert!(
                third.exists(p).await.unwrap().is_some(),
                "a clone is alive, yet {p} is gone"
            );
        }
        drop(d2);
        assert!(
            eventually(Duration::from_secs(10), || async {
                third.exists("/dropped").await.unwrap().is_none()
                    && third.exists("/dropped-2").await.unwrap().is_none()
            })
            .await
        );

        // Oversized request: refused locally, the session is unaffected.
        let big = Bytes::from(vec![0u8; 2 * 1024 * 1024]);
        assert!(matches!(
            third
                .create("/big", big, &acl::open_unsafe(), CreateMode::Persistent)
                .await,
            Err(Error::RequestTooLarge { .. })
        ));
        assert!(third.exists("/").await.unwrap().is_some());
        let counters = third.counters();
        assert_eq!(counters.session.reconnects, 0);
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn pipelined_replies_resolve_in_submission_order() {
    run(LIMIT, async {
        let c = root().await;
        ensure(&c, "/order").await;
        let base = c.set_data("/order", "", -1).await.unwrap().version;
        // 200 writes issued back to back from one task, all in flight at once.
        let n = 200usize;
        let mut futs: Vec<_> = (0..n)
            .map(|i| {
                let c = c.clone();
                Box::pin(async move { c.set_data("/order", i.to_string(), -1).await })
            })
            .collect();
        let mut done: Vec<Option<i32>> = vec![None; n];
        let mut completion = Vec::with_capacity(n);
        std::future::poll_fn(|cx| {
            for (i, f) in futs.iter_mut().enumerate() {
                if done[i].is_none()
                    && let std::task::Poll::Ready(r) = f.as_mut().poll(cx)
                {
                    done[i] = Some(r.unwrap().version);
                    completion.push(i);
                }
            }
            if completion.len() == n {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        // The server applied them in submission order...
        let versions: Vec<i32> = done.into_iter().map(Option::unwrap).collect();
        let expected: Vec<i32> = (1..=n).map(|i| base + i32::try_from(i).unwrap()).collect();
        assert_eq!(versions, expected);
        // ...and their futures resolved in that order.
        assert!(completion.windows(2).all(|w| w[0] < w[1]), "{completion:?}");
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn two_clients_resuming_one_session_end_taken_over() {
    run(LIMIT, async {
        // Both on the same server, so each handshake kicks the other's connection.
        let one = ens().node(0).client_addr().to_string();
        let a = client(&one).await;
        let b = Client::builder(&one)
            .session_timeout(Duration::from_secs(4))
            .resume(a.saved_session())
            .connect()
            .await
            .unwrap();
        assert_eq!(a.session_id(), b.session_id());
        let mut sa = a.state_stream();
        let mut sb = b.state_stream();
        let either = async {
            tokio::select! {
                r = sa.wait_for(|s| s.state == SessionState::TakenOver) => r.map(|_| ()),
                r = sb.wait_for(|s| s.state == SessionState::TakenOver) => r.map(|_| ()),
            }
        };
        if tokio::time::timeout(Duration::from_secs(20), either)
            .await
            .is_err()
        {
            // ZooKeeper 3.8 closes only a session's registered connections when a handshake
            // arrives; two overlapping handshakes (one still being revalidated) can both be
            // kept, and then neither client sees anything. Accepted only with the server's
            // word for it (tests/shared_session.rs covers the twins in depth).
            let kept = ens()
                .session_connections(0, a.session_id())
                .await
                .unwrap_or(0);
            assert!(
                a.state() == SessionState::Connected
                    && b.state() == SessionState::Connected
                    && kept >= 2,
                "no client gave up in 20 s: a {:?} {:?}, b {:?} {:?}; the server holds {kept} \
                 connections of the session",
                a.state(),
                a.counters(),
                b.state(),
                b.counters()
            );
            eprintln!("the server kept both twins' connections ({kept})");
            return;
        }
        let loser = if a.state() == SessionState::TakenOver {
            &a
        } else {
            &b
        };
        assert_eq!(loser.get_data("/").await.unwrap_err(), Error::TakenOver);
        assert!(Error::TakenOver.is_terminal());
        eprintln!(
            "taken over: a={:?} b={:?} a.reconnects={} b.reconnects={}",
            a.state(),
            b.state(),
            a.counters().session.reconnects,
            b.counters().session.reconnects
        );
    });
}

/// What `Client::sync`'s documentation says, and what `catch_up` relies on: a reader on the
/// leader must see a node a writer on a follower was told is created. After a no-op write
/// (check-only multi) it always does; after a `sync` ZooKeeper 3.8 may not (the leader serves
/// it as a plain read, ahead of commits not yet applied there) — those misses are counted and
/// printed, not asserted, since they depend on timing (10–18 in 3,000 rounds measured here).
#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn a_no_op_write_makes_the_leader_see_what_a_follower_acknowledged() {
    run(LIMIT, async {
        let leader = ens()
            .wait_for_leader(Duration::from_secs(30))
            .await
            .unwrap();
        let follower = ens().followers().await[0];
        let on = |i: usize| ens().node(i).client_addr().to_string();
        let writer = client(&on(follower)).await;
        let reader = client(&on(leader)).await;
        ensure(&writer, "/barrier").await;
        let base = format!("/barrier/{:x}", writer.session_id());
        ensure(&writer, &base).await;
        let rounds = 300;
        let mut missed_after_sync = 0;
        for i in 0..rounds {
            let p = format!("{base}/s{i}");
            writer
                .create(&p, "", &acl::open_unsafe(), CreateMode::Ephemeral)
                .await
                .unwrap();
            reader.sync("/").await.unwrap();
            if reader.exists(&p).await.unwrap().is_none() {
                missed_after_sync += 1;
            }
            let p = format!("{base}/w{i}");
            writer
                .create(&p, "", &acl::open_unsafe(), CreateMode::Ephemeral)
                .await
                .unwrap();
            catch_up(&reader).await;
            assert!(
                reader.exists(&p).await.unwrap().is_some(),
                "round {i}: the leader's reader missed {p} after a no-op write"
            );
        }
        eprintln!(
            "reader on the leader: {missed_after_sync} of {rounds} creates acknowledged on a \
             follower missed after sync, 0 after a no-op write"
        );
        assert_eq!(
            writer.server().and_then(|a| ens().node_for_addr(a)),
            Some(follower)
        );
        assert_eq!(
            reader.server().and_then(|a| ens().node_for_addr(a)),
            Some(leader)
        );
        writer.close().await;
        reader.close().await;
    });
}
