//! TCP connector against loopback listeners.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{closed_port, echo, round_trip};
use tokio::net::TcpListener;
use zk_transport::{ConnectError, Connector, Target, TcpConnector};

const DEADLINE: Duration = Duration::from_secs(5);

async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move { echo(&mut sock).await });
        }
    });
    addr
}

#[tokio::test]
async fn connects_and_carries_bytes() {
    let addr = echo_server().await;
    let connector: Arc<dyn Connector> = Arc::new(TcpConnector::new());
    let mut stream = connector
        .connect(&Target::from_addr(addr), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut stream, b"\0\0\0\x2dconnect request").await;

    // Box<dyn Connector> forwards too.
    let boxed: Box<dyn Connector> = Box::new(TcpConnector::default());
    let mut stream = boxed
        .connect(&Target::new(addr, "localhost"), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut stream, b"boxed").await;
}

#[tokio::test]
async fn socket_options_are_applied() {
    let addr = echo_server().await;
    let connector = TcpConnector::new()
        .keepalive(Some(Duration::from_secs(7)))
        .user_timeout(Some(Duration::from_secs(3)));
    let stream = connector
        .connect_tcp(&Target::from_addr(addr), DEADLINE)
        .await
        .unwrap();
    assert!(stream.nodelay().unwrap());
    let sock = socket2::SockRef::from(&stream);
    assert!(sock.keepalive().unwrap());
    #[cfg(target_os = "linux")]
    {
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(7)
        );
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(3))
        );
    }

    let plain = TcpConnector::new()
        .nodelay(false)
        .connect_tcp(&Target::from_addr(addr), DEADLINE)
        .await
        .unwrap();
    assert!(!plain.nodelay().unwrap());
    assert!(!socket2::SockRef::from(&plain).keepalive().unwrap());
}

#[tokio::test]
async fn closed_port_is_refused() {
    let addr = closed_port().await;
    let err = TcpConnector::new()
        .connect(&Target::from_addr(addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert_eq!(err, ConnectError::Refused);
    assert!(err.is_transient());
    assert_eq!(err.to_string(), "connection refused");
}

#[tokio::test]
async fn zero_deadline_fails_fast_and_typed() {
    // A zero deadline must never hang; the outcome depends on whether the loopback connect
    // completes on the first poll, but it must be typed.
    let addr = closed_port().await;
    let err = TcpConnector::new()
        .connect(&Target::from_addr(addr), Duration::ZERO)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ConnectError::Refused | ConnectError::TimedOut),
        "{err:?}"
    );
}

#[tokio::test]
async fn target_display_names_host_and_address() {
    let addr: std::net::SocketAddr = "127.0.0.1:2181".parse().unwrap();
    assert_eq!(Target::from_addr(addr).to_string(), "127.0.0.1:2181");
    assert_eq!(
        Target::new(addr, "zk1.example").to_string(),
        "zk1.example (127.0.0.1:2181)"
    );
}

/// `set_receive_low_water` on a connector's TCP stream: the reader is not woken for fewer
/// bytes than the mark, is woken once they are there, and a read below the mark still returns
/// what is buffered. Other streams are left alone.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn receive_low_water_batches_wake_ups() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connector = TcpConnector::new();
    let mut stream = connector
        .connect(&Target::from_addr(addr), DEADLINE)
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    assert!(zk_transport::set_receive_low_water(&*stream, 100));

    server.write_all(&[7; 10]).await.unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(early.is_err(), "woken for 10 bytes with a mark of 100");

    server.write_all(&[8; 100]).await.unwrap();
    let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("woken once 110 bytes are buffered")
        .unwrap();
    assert_eq!(n, 110);
    assert_eq!(&buf[..10], &[7; 10]);

    // Back to the default: one byte wakes the reader again.
    assert!(zk_transport::set_receive_low_water(&*stream, 0));
    server.write_all(&[9]).await.unwrap();
    let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("woken for one byte with the default mark")
        .unwrap();
    assert_eq!(n, 1);

    // Not a TCP stream: nothing to set.
    let (a, _b) = tokio::io::duplex(64);
    let boxed: zk_transport::BoxStream = Box::new(a);
    assert!(!zk_transport::set_receive_low_water(&*boxed, 100));
}
