//! The in-memory connector's scripted modes, in virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use zk_transport::{ConnectError, Connector, MemoryBehaviour, MemoryConnector, Target};

fn target(n: u8) -> Target {
    Target::new(SocketAddr::from(([10, 0, 0, n], 2181)), format!("zk{n}"))
}

const DEADLINE: Duration = Duration::from_secs(2);

#[tokio::test(start_paused = true)]
async fn accept_pairs_client_and_server_and_tags_the_target() {
    let (connector, mut listener) = MemoryConnector::new();
    let connector: Arc<dyn Connector> = Arc::new(connector);
    let mut client = connector.connect(&target(1), DEADLINE).await.unwrap();
    let (seen, mut server) = listener.accept().await.unwrap();
    assert_eq!(seen, target(1));

    client.write_all(b"request").await.unwrap();
    let mut buf = [0u8; 7];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"request");
    server.write_all(b"reply").await.unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"reply");

    // Server closes: the client sees EOF.
    drop(server);
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn refusing_address_fails_at_once() {
    let (connector, mut listener) = MemoryConnector::new();
    connector.refuse(target(2).addr);
    let started = Instant::now();
    let err = connector.connect(&target(2), DEADLINE).await.err().unwrap();
    assert_eq!(err, ConnectError::Refused);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(listener.try_accept().is_none());
    // Other addresses are unaffected.
    assert!(connector.connect(&target(1), DEADLINE).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn hanging_address_times_out_exactly_at_the_deadline() {
    let (connector, mut listener) = MemoryConnector::new();
    connector.hang(target(3).addr);
    let started = Instant::now();
    let err = connector
        .connect(&target(3), Duration::from_millis(1500))
        .await
        .err()
        .unwrap();
    assert_eq!(err, ConnectError::TimedOut);
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
    assert!(listener.try_accept().is_none());
}

#[tokio::test(start_paused = true)]
async fn script_is_consumed_in_order_then_standing_behaviour_applies() {
    let (connector, mut listener) = MemoryConnector::new();
    let t = target(4);
    connector.set_behaviour(t.addr, MemoryBehaviour::Fail(ConnectError::Unreachable));
    connector.script(
        t.addr,
        [
            MemoryBehaviour::Refuse,
            MemoryBehaviour::Hang,
            MemoryBehaviour::Accept,
        ],
    );
    let timeout = Duration::from_millis(100);
    assert_eq!(
        connector.connect(&t, timeout).await.err(),
        Some(ConnectError::Refused)
    );
    assert_eq!(
        connector.connect(&t, timeout).await.err(),
        Some(ConnectError::TimedOut)
    );
    assert!(connector.connect(&t, timeout).await.is_ok());
    assert_eq!(listener.try_accept().unwrap().0, t);
    assert_eq!(
        connector.connect(&t, timeout).await.err(),
        Some(ConnectError::Unreachable)
    );
    assert_eq!(connector.attempts(t.addr), 4);

    connector.restore(t.addr);
    assert!(connector.connect(&t, timeout).await.is_ok());
    assert_eq!(connector.attempts(t.addr), 5);
}

#[tokio::test(start_paused = true)]
async fn accept_after_delay_respects_the_deadline() {
    let (connector, mut listener) = MemoryConnector::new();
    let t = target(5);
    connector.set_behaviour(
        t.addr,
        MemoryBehaviour::AcceptAfter(Duration::from_millis(300)),
    );

    let started = Instant::now();
    assert!(connector.connect(&t, Duration::from_secs(1)).await.is_ok());
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert!(listener.try_accept().is_some());

    let started = Instant::now();
    let err = connector
        .connect(&t, Duration::from_millis(200))
        .await
        .err()
        .unwrap();
    assert_eq!(err, ConnectError::TimedOut);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert!(listener.try_accept().is_none());
}

#[tokio::test(start_paused = true)]
async fn attempt_log_records_order_across_clones() {
    let (connector, _listener) = MemoryConnector::new();
    let clone = connector.clone();
    clone.refuse(target(2).addr);
    for n in [1, 2, 3, 2] {
        let _ = connector.connect(&target(n), DEADLINE).await;
    }
    let order: Vec<u8> = clone
        .attempt_log()
        .iter()
        .map(|t| match t.addr.ip() {
            std::net::IpAddr::V4(ip) => ip.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        })
        .collect();
    assert_eq!(order, [1, 2, 3, 2]);
    assert_eq!(clone.attempts(target(2).addr), 2);
}

#[tokio::test(start_paused = true)]
async fn dropped_listener_means_refused_and_dropped_connectors_end_accept() {
    let (connector, listener) = MemoryConnector::new();
    drop(listener);
    assert_eq!(
        connector.connect(&target(1), DEADLINE).await.err(),
        Some(ConnectError::Refused)
    );

    let (connector, mut listener) = MemoryConnector::new();
    drop(connector);
    assert!(listener.accept().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn small_buffer_applies_backpressure() {
    let (connector, mut listener) = MemoryConnector::with_buffer_size(4);
    assert_eq!(connector.buffer_size(), 4);
    let mut client = connector.connect(&target(1), DEADLINE).await.unwrap();
    let (_, mut server) = listener.accept().await.unwrap();

    // 8 bytes do not fit in a 4-byte pipe until the server reads.
    let blocked = tokio::time::timeout(Duration::from_secs(1), client.write_all(b"12345678")).await;
    assert!(blocked.is_err(), "write should block on a full pipe");

    let writer = tokio::spawn(async move {
        client.write_all(b"abcdefgh").await.unwrap();
        client
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    while got.len() < 12 {
        let n = server.read(&mut buf).await.unwrap();
        assert!(n <= 4);
        got.extend_from_slice(&buf[..n]);
    }
    // The timed-out write may have pushed part of its bytes; the tail is the second write.
    assert!(got.ends_with(b"abcdefgh"), "{got:?}");
    writer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn zero_buffer_size_is_clamped() {
    let (connector, _listener) = MemoryConnector::with_buffer_size(0);
    assert_eq!(connector.buffer_size(), 1);
}
