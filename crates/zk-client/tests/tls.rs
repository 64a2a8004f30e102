//! The client over TLS (mutual TLS, Netty `secureClientPort`) against a real 3-node
//! ZooKeeper 3.8 ensemble, including a failover with a watch kept.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{ensemble_with, fired, run};
use zk_client::{Client, CreateMode, EventType, SessionState, TlsConfig, acl};
use zk_testkit::{Ensemble, TlsOptions};

static ENS: OnceLock<Ensemble> = OnceLock::new();

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn tls_session_with_failover() {
    let ens = ensemble_with(&ENS, || {
        Ensemble::builder().nodes(3).tls(TlsOptions::default())
    });
    run(Duration::from_secs(300), async move {
        let material = ens.tls().unwrap();
        let config = TlsConfig::builder()
            .ca_pem(&material.ca_pem)
            .unwrap()
            .client_cert_pem(&material.client_cert_pem, &material.client_key_pem)
            .unwrap()
            .build()
            .unwrap();
        let cs = ens.tls_connect_string().unwrap();
        let c = Client::builder(&cs)
            .tls(config.clone())
            .session_timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        assert_eq!(c.state(), SessionState::Connected);
        c.create(
            "/tls",
            "over tls",
            &acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        let (data, _, watcher) = c.get_data_watch("/tls").await.unwrap();
        assert_eq!(&data[..], b"over tls");

        // Kill the server the session is on; the watch follows the session.
        let on = ens
            .nodes()
            .iter()
            .position(|n| n.secure_addr() == c.server())
            .unwrap();
        ens.node(on).kill().unwrap();
        let other = Client::builder(&cs)
            .tls(config)
            .connect_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        other.set_data("/tls", "changed", -1).await.unwrap();
        let ev = fired(watcher, Duration::from_secs(20)).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeDataChanged, "/tls")
        );
        assert!(c.counters().session.reconnects >= 1);
        assert_eq!(&c.get_data("/tls").await.unwrap().0[..], b"changed");
        eprintln!("TLS failover pause: {:?}", c.counters().session.last_pause);
    });
}
