//! FaultProxy modes, checked with plain sockets against a small echo server (no ZooKeeper).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zk_testkit::{FaultProxy, HoldFilter, ProxyMode};

/// Generous limit for things that should happen "now" on a loaded 2-core machine.
const SOON: Duration = Duration::from_secs(10);
/// How long silence must last to count as silence.
const QUIET: Duration = Duration::from_millis(400);

/// An echo server; returns its address.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A server that records everything it receives on one connection and answers nothing.
async fn recording_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let _ = tx.send(buf[..n].to_vec());
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(SOON, s.read_exact(&mut buf))
        .await
        .expect("echo timed out")
        .unwrap();
    buf
}

/// Read with a short limit: Ok(None) means silence.
async fn read_within(s: &mut TcpStream, limit: Duration) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    match tokio::time::timeout(limit, s.read(&mut buf)).await {
        Err(_) => Ok(None),
        Ok(Ok(n)) => Ok(Some(buf[..n].to_vec())),
        Ok(Err(e)) => Err(e),
    }
}

async fn wait_connections(p: &FaultProxy, n: usize) {
    let deadline = Instant::now() + SOON;
    while p.connection_count() != n {
        assert!(
            Instant::now() < deadline,
            "expected {n} connections, have {}",
            p.connection_count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn is_reset_or_eof(r: &std::io::Result<Option<Vec<u8>>>) -> bool {
    match r {
        Ok(Some(v)) => v.is_empty(),
        Ok(None) => false,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
        ),
    }
}

fn zk_frame(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut v = i32::try_from(8 + body.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn pass_forwards_both_ways_and_counts_connections() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    assert_eq!(proxy.mode(), ProxyMode::Pass);
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut a, b"hello").await, b"hello");
    assert_eq!(roundtrip(&mut b, b"world").await, b"world");
    wait_connections(&proxy, 2).await;
    // A large transfer goes through intact (bounded buffers, many chunks).
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = a.into_split();
    let send = big.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&send).await.unwrap();
        w
    });
    let mut got = vec![0u8; big.len()];
    tokio::time::timeout(SOON, r.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, big);
    drop(writer.await.unwrap());
    drop(r);
    drop(b);
    wait_connections(&proxy, 0).await;
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut s, b"warm").await;
    proxy.set_latency(Duration::from_millis(150), Duration::from_millis(100));
    let t0 = Instant::now();
    roundtrip(&mut s, b"slow").await;
    let rtt = t0.elapsed();
    assert!(rtt >= Duration::from_millis(250), "rtt {rtt:?}");
    // Latency does not accumulate across chunks sent back to back.
    let t0 = Instant::now();
    for i in 0..5u8 {
        s.write_all(&[i]).await.unwrap();
    }
    let mut buf = [0u8; 5];
    tokio::time::timeout(SOON, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, [0, 1, 2, 3, 4]);
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_millis(250 * 5),
        "latency accumulated: {elapsed:?}"
    );
    proxy.set_latency(Duration::ZERO, Duration::ZERO);
    assert_eq!(roundtrip(&mut s, b"fast").await, b"fast");
}

#[tokio::test]
async fn blackhole_silences_existing_and_new_connections_then_heals() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut old, b"before").await, b"before");

    proxy.set_mode(ProxyMode::Blackhole);
    old.write_all(b"during").await.unwrap();
    assert!(
        read_within(&mut old, QUIET).await.unwrap().is_none(),
        "blackhole leaked bytes"
    );

    // New connections are accepted (connect succeeds) but get silence too.
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    new.write_all(b"newconn").await.unwrap();
    assert!(read_within(&mut new, QUIET).await.unwrap().is_none());
    wait_connections(&proxy, 2).await;

    // Healing delivers what was held, in order (TCP retransmission model).
    proxy.set_mode(ProxyMode::Pass);
    let mut buf = [0u8; 6];
    tokio::time::timeout(SOON, old.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"during");
    let mut buf = [0u8; 7];
    tokio::time::timeout(SOON, new.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"newconn");
    assert_eq!(roundtrip(&mut old, b"after").await, b"after");
}

#[tokio::test]
async fn refuse_new_resets_new_connections_but_existing_pass() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut old, b"x").await;
    proxy.set_mode(ProxyMode::RefuseNew);
    for _ in 0..3 {
        match TcpStream::connect(proxy.addr()).await {
            Err(_) => {}
            Ok(mut s) => {
                let _ = s.write_all(b"anyone?").await;
                let r = read_within(&mut s, SOON).await;
                assert!(is_reset_or_eof(&r), "refused connection answered: {r:?}");
            }
        }
    }
    assert_eq!(roundtrip(&mut old, b"still here").await, b"still here");
    proxy.set_mode(ProxyMode::Pass);
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut again, b"back").await, b"back");
}

#[tokio::test]
async fn accept_silent_accepts_but_never_answers() {
    let (upstream, mut seen) = recording_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    old.write_all(b"old-1").await.unwrap();
    assert_eq!(
        tokio::time::timeout(SOON, seen.recv())
            .await
            .unwrap()
            .unwrap(),
        b"old-1"
    );

    proxy.set_mode(ProxyMode::AcceptSilent);
    let mut silent = TcpStream::connect(proxy.addr()).await.unwrap();
    silent.write_all(b"hello?").await.unwrap();
    assert!(read_within(&mut silent, QUIET).await.unwrap().is_none());
    wait_connections(&proxy, 2).await;
    // Existing connections still pass.
    old.write_all(b"old-2").await.unwrap();
    assert_eq!(
        tokio::time::timeout(SOON, seen.recv())
            .await
            .unwrap()
            .unwrap(),
        b"old-2"
    );
    // Even after switching back, the silent connection never reaches the server.
    proxy.set_mode(ProxyMode::Pass);
    silent.write_all(b"still?").await.unwrap();
    assert!(read_within(&mut silent, QUIET).await.unwrap().is_none());
    assert!(
        seen.try_recv().is_err(),
        "silent connection reached the server"
    );
    drop(silent);
    wait_connections(&proxy, 1).await;
}

#[tokio::test]
async fn reset_all_sends_rst_and_keeps_listening() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    roundtrip(&mut a, b"a").await;
    roundtrip(&mut b, b"b").await;
    wait_connections(&proxy, 2).await;
    proxy.reset_all();
    for s in [&mut a, &mut b] {
        let r = read_within(s, SOON).await;
        assert!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset),
            "expected RST, got {r:?}"
        );
    }
    wait_connections(&proxy, 0).await;
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"new").await, b"new");
}

#[tokio::test]
async fn dead_upstream_resets_the_client() {
    // Bind and release a port so nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(dead).await.unwrap();
    // The RST may already arrive while connect() completes.
    if let Ok(mut s) = TcpStream::connect(proxy.addr()).await {
        let r = read_within(&mut s, SOON).await;
        assert!(is_reset_or_eof(&r), "got {r:?}");
    }
}

#[tokio::test]
async fn upstream_close_reaches_the_client() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = FaultProxy::start(l.local_addr().unwrap()).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let (server_side, _) = tokio::time::timeout(SOON, l.accept())
        .await
        .unwrap()
        .unwrap();
    drop(server_side);
    let r = read_within(&mut s, SOON).await;
    assert!(is_reset_or_eof(&r), "got {r:?}");
}

#[tokio::test]
async fn hold_next_frame_holds_and_releases() {
    let (upstream, mut seen) = recording_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let held = proxy.hold_next_frame();
    assert!(!held.is_captured());
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();

    let connect = [&45i32.to_be_bytes()[..], &[0u8; 45]].concat();
    let ping = zk_frame(-2, 11, b"");
    let create = zk_frame(1, 1, b"/held");
    let exists = zk_frame(2, 3, b"/after");
    // ConnectRequest and ping pass (default filter); the create is held and the exists queues
    // behind it, as it would on a real TCP stream.
    let mut stream = Vec::new();
    for f in [&connect, &ping, &create, &exists] {
        stream.extend_from_slice(f);
    }
    s.write_all(&stream).await.unwrap();
    assert!(held.wait_captured(SOON).await);
    assert_eq!(held.frame().unwrap(), create);

    let mut got = Vec::new();
    let want_before = [connect.clone(), ping.clone()].concat();
    while got.len() < want_before.len() {
        got.extend(
            tokio::time::timeout(SOON, seen.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(got, want_before);
    tokio::time::sleep(QUIET).await;
    assert!(seen.try_recv().is_err(), "bytes overtook the held frame");

    assert!(held.release());
    assert!(!held.release(), "second release must be a no-op");
    assert!(held.wait_forwarded(SOON).await);
    let mut after = Vec::new();
    let want_after = [create, exists].concat();
    while after.len() < want_after.len() {
        after.extend(
            tokio::time::timeout(SOON, seen.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(after, want_after);

    // Nothing else is held without a new arm.
    let later = zk_frame(3, 4, b"x");
    s.write_all(&later).await.unwrap();
    assert_eq!(
        tokio::time::timeout(SOON, seen.recv())
            .await
            .unwrap()
            .unwrap(),
        later
    );
}

#[tokio::test]
async fn held_frame_with_opcode_filter_and_reset_drops_it() {
    let (upstream, mut seen) = recording_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let connect = [&4i32.to_be_bytes()[..], &[7u8; 4]].concat();
    s.write_all(&connect).await.unwrap();
    assert_eq!(
        tokio::time::timeout(SOON, seen.recv())
            .await
            .unwrap()
            .unwrap(),
        connect
    );

    let held = proxy.hold_next_frame_matching(HoldFilter::opcode(5));
    let get = zk_frame(10, 4, b"get");
    s.write_all(&get).await.unwrap();
    assert_eq!(
        tokio::time::timeout(SOON, seen.recv())
            .await
            .unwrap()
            .unwrap(),
        get
    );
    let set = zk_frame(11, 5, b"set");
    s.write_all(&set).await.unwrap();
    assert!(held.wait_captured(SOON).await);
    assert_eq!(held.frame().unwrap(), set);

    // The connection dies with the frame held: release reports it is gone.
    proxy.reset_all();
    wait_connections(&proxy, 0).await;
    assert!(!held.release());
    assert!(!held.wait_forwarded(Duration::from_millis(100)).await);
    tokio::time::sleep(QUIET).await;
    assert!(seen.try_recv().is_err());
}

#[tokio::test]
async fn dropping_an_uncaptured_hold_disarms_it() {
    let (upstream, mut seen) = recording_server().await;
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let held = proxy.hold_next_frame();
    assert!(!held.wait_captured(Duration::from_millis(50)).await);
    drop(held);
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let frames = [zk_frame(0, 0, b""), zk_frame(1, 1, b"free")].concat();
    s.write_all(&frames).await.unwrap();
    let mut got = Vec::new();
    while got.len() < frames.len() {
        got.extend(
            tokio::time::timeout(SOON, seen.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(got, frames);
}

#[tokio::test]
async fn dropping_the_proxy_closes_everything() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let addr = proxy.addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    roundtrip(&mut s, b"x").await;
    drop(proxy);
    let r = read_within(&mut s, SOON).await;
    assert!(is_reset_or_eof(&r), "got {r:?}");
    let deadline = Instant::now() + SOON;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
