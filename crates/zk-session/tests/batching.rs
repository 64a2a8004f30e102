//! Reply batching under load (the driver's receive low-water mark): with many requests in
//! flight the engine wakes up once per batch of replies, but no reply may be held back for
//! long by a mark that the bytes still to come do not reach.
//!
//! **A real ZooKeeper server cannot be made to do this on demand**: the test uses a *scripted
//! fake peer* on a loopback listener that completes the handshake itself, reads 64 pipelined
//! requests, answers only the first, stays silent for 2 s, then answers the rest. The first
//! answer must reach its caller long before the silence ends; every answer must arrive.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "support/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wire::{frame, read_frame, reply_frame};
use zk_connstr::{Host, HostSpec};
use zk_proto::{ConnectResponse, ErrorCode, GetDataRequest, OpCode, Record};
use zk_session::driver::spawn;
use zk_session::{Request, Session, SessionConfig, StaticHostProvider};
use zk_transport::TcpConnector;

const IN_FLIGHT: usize = 64;
const SILENCE: Duration = Duration::from_secs(2);

/// A reply carrying `tag` as its body, so the test can tell which request it answers.
fn reply(xid: i32, tag: u32) -> Vec<u8> {
    reply_frame(xid, 7, ErrorCode::Ok, &tag.to_be_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_below_the_low_water_mark_is_not_held_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let (mut r, mut w) = s.into_split();
        read_frame(&mut r).await.expect("ConnectRequest");
        let mut resp = BytesMut::new();
        ConnectResponse {
            protocol_version: 0,
            timeout: 30_000,
            session_id: 0x5eed,
            passwd: Bytes::from_static(&[1; 16]),
            read_only: false,
        }
        .encode(&mut resp);
        w.write_all(&frame(&resp)).await.unwrap();
        // Collect every request first, so the client has them all in flight.
        let mut xids = Vec::new();
        while xids.len() < IN_FLIGHT {
            let req = read_frame(&mut r).await.expect("request");
            let xid = i32::from_be_bytes(req[..4].try_into().unwrap());
            if xid >= 0 {
                xids.push(xid);
            }
        }
        w.write_all(&reply(xids[0], 0)).await.unwrap();
        tokio::time::sleep(SILENCE).await;
        let mut rest = Vec::new();
        for (i, xid) in xids.iter().enumerate().skip(1) {
            rest.extend_from_slice(&reply(*xid, u32::try_from(i).unwrap()));
        }
        w.write_all(&rest).await.unwrap();
        // Keep the connection open until the client goes away.
        let mut sink = vec![0; 4096];
        while matches!(r.read(&mut sink).await, Ok(n) if n > 0) {}
    });

    let SocketAddr::V4(v4) = addr else {
        unreachable!()
    };
    let spec = HostSpec {
        host: Host::Ipv4(*v4.ip()),
        port: v4.port(),
    };
    let mut cfg = SessionConfig::default();
    cfg.rng_seed = Some(zk_session::fresh_seed());
    cfg.session_timeout = Duration::from_secs(30);
    let core = Session::new(
        cfg,
        Box::new(StaticHostProvider::in_order(vec![spec])),
        Instant::now(),
    );
    let (handle, _events) = spawn(core, Arc::new(TcpConnector::new()));
    let state = handle.wait_connected(Duration::from_secs(10)).await;
    assert!(
        state.is_connected(),
        "handshake with the fake peer: {state:?}"
    );

    let started = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..IN_FLIGHT {
        let h = handle.clone();
        let body = GetDataRequest {
            path: "/x".into(),
            watch: false,
        }
        .to_bytes();
        calls.push(tokio::spawn(async move {
            let reply = h.submit(Request::read(OpCode::GetData, body)).await;
            (Instant::now(), reply)
        }));
    }
    let mut done = Vec::new();
    for c in calls {
        done.push(c.await.unwrap());
    }
    // The tasks may have submitted in any order: identify the answers by their tags.
    let mut tags = Vec::new();
    for (at, r) in &done {
        let body = &r.as_ref().expect("every request answered").body;
        let tag = u32::from_be_bytes(body[..4].try_into().unwrap());
        let waited = at.saturating_duration_since(started);
        if tag == 0 {
            assert!(
                waited < SILENCE / 2,
                "the only reply before the silence took {waited:?}: held below the low-water mark"
            );
        } else {
            assert!(waited >= SILENCE / 2, "reply {tag} before the peer sent it");
        }
        tags.push(tag);
    }
    tags.sort_unstable();
    let expected: Vec<u32> = (0..u32::try_from(IN_FLIGHT).unwrap()).collect();
    assert_eq!(tags, expected);
    handle.close().await;
    peer.abort();
}
