//! SASL in the session core, driven by hand (no sockets, no clock): what goes on the wire and
//! when, and what each kind of failure leads to. The core never runs a mechanism itself; the
//! test plays the driver (answering `Action::Sasl` with chosen steps) and the server.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::{ErrorCode, OpCode, Record, SetSaslResponse};
use zk_session_core::testing::{
    ClientFrame, ClientStream, connect_response, frame, host_spec, reply_frame,
};
use zk_session_core::{
    Action, ConnId, DigestMd5, Output, Preamble, PreamblePacket, Request, RequestError, SaslError,
    SaslStep, Session, SessionConfig, SessionEvent, SessionState, StaticHostProvider,
};

/// An `auth` packet in the preamble: it must wait for SASL like everything else.
struct AuthPreamble;

impl Preamble for AuthPreamble {
    fn build(&mut self, _relative_zxid: i64, out: &mut Vec<PreamblePacket>) {
        out.push(PreamblePacket {
            xid: zk_proto::xid::AUTH,
            op: OpCode::Auth,
            body: Bytes::from_static(b"\0\0\0\0\0\0\0\x06digest\0\0\0\x03a:b"),
        });
    }
}

struct Harness {
    s: Session,
    now: Instant,
    conn: Option<ConnId>,
    server: ClientStream,
    sasl: Vec<(ConnId, Option<Bytes>)>,
    connects: Vec<u16>,
    completed: Vec<Result<zk_session_core::Reply, RequestError>>,
}

impl Harness {
    fn new() -> Self {
        let mut cfg = SessionConfig::with_timeout(Duration::from_secs(6));
        cfg.rng_seed = Some(7);
        cfg.sasl = Some(Arc::new(DigestMd5::new("bob", "secret")));
        let hosts = StaticHostProvider::in_order((1..=3).map(|i| host_spec(9000 + i)).collect());
        let now = Instant::now();
        let mut s = Session::new(cfg, Box::new(hosts), now);
        s.set_preamble(Box::new(AuthPreamble));
        Self {
            s,
            now,
            conn: None,
            server: ClientStream::new(),
            sasl: Vec::new(),
            connects: Vec::new(),
            completed: Vec::new(),
        }
    }

    /// Started: the transport and the first SASL step are asked for.
    fn started() -> Self {
        let mut h = Self::new();
        h.s.start(h.now);
        h.pump();
        h
    }

    /// Started, with the transport open.
    fn opened() -> Self {
        let mut h = Self::started();
        h.open();
        h
    }

    fn pump(&mut self) {
        while let Some(out) = self.s.poll_output() {
            match out {
                Output::Action(Action::Connect { conn, target, .. }) => {
                    self.conn = Some(conn);
                    self.server = ClientStream::new();
                    self.connects.push(target.addr.port());
                }
                Output::Action(Action::Sasl { conn, token, .. }) => self.sasl.push((conn, token)),
                Output::Transmit { conn, data } if Some(conn) == self.conn => {
                    self.server.push(&data);
                }
                Output::Event(SessionEvent::Completed { result, .. }) => {
                    self.completed.push(result);
                }
                _ => {}
            }
        }
    }

    fn conn(&self) -> ConnId {
        self.conn.unwrap()
    }

    /// Every frame the client wrote since the last call: `Connect` or the opcode.
    fn frames(&mut self) -> Vec<(Option<OpCode>, i32)> {
        let mut out = Vec::new();
        while let Some(f) = self.server.next_frame() {
            out.push(match f {
                ClientFrame::Connect(_) => (None, 0),
                ClientFrame::Request { header, .. } => (Some(header.op), header.xid),
            });
        }
        out
    }

    fn open(&mut self) {
        self.s.handle_connected(self.now, self.conn());
        self.pump();
    }

    fn server_sends(&mut self, bytes: &[u8]) {
        self.now += Duration::from_millis(1);
        self.s.handle_data(self.now, self.conn(), bytes);
        self.pump();
    }

    fn step(&mut self, result: Result<SaslStep, SaslError>) {
        let conn = self.conn();
        self.s.handle_sasl(self.now, conn, result);
        self.pump();
    }

    fn connect_response(&mut self, session: i64) {
        let mut b = BytesMut::new();
        connect_response(session, 6000, 9).encode(&mut b);
        self.server_sends(&frame(&b));
    }

    fn sasl_reply(&mut self, xid: i32, token: Option<&[u8]>) {
        let mut b = BytesMut::new();
        SetSaslResponse {
            token: token.map(Bytes::copy_from_slice),
        }
        .encode(&mut b);
        self.server_sends(&reply_frame(xid, 0, ErrorCode::Ok, &b));
    }

    /// Start, connect and complete a three-leg SASL exchange; returns the SASL xids.
    fn establish(&mut self, session: i64) {
        self.step(Ok(SaslStep::Send(Vec::new())));
        let f = self.frames();
        let xid = f
            .iter()
            .find(|(op, _)| *op == Some(OpCode::Sasl))
            .unwrap()
            .1;
        self.connect_response(session);
        self.sasl_reply(xid, Some(b"challenge"));
        self.step(Ok(SaslStep::Send(b"response".to_vec())));
        let f = self.frames();
        assert_eq!(f.len(), 1, "{f:?}");
        self.sasl_reply(f[0].1, Some(b"rspauth"));
        self.step(Ok(SaslStep::Done));
    }
}

fn read() -> Request {
    Request::read(OpCode::Exists, Bytes::from_static(b"\0\0\0\x02/a\0"))
}

#[test]
fn sasl_comes_before_preamble_requests_and_pings() {
    let mut h = Harness::new();
    h.s.submit(h.now, read());
    h.s.start(h.now);
    h.pump();
    h.open();
    // Only the ConnectRequest; the driver is asked for the first token.
    assert_eq!(h.frames(), vec![(None, 0)]);
    assert_eq!(h.sasl.len(), 1);
    assert!(h.sasl[0].1.is_none());
    // The first token is pipelined behind the ConnectRequest, alone.
    h.step(Ok(SaslStep::Send(Vec::new())));
    let f = h.frames();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, Some(OpCode::Sasl));
    let xid = f[0].1;
    h.connect_response(0x77);
    // The session exists on the server, but it is not ours until SASL is done.
    assert_eq!(h.s.state(), SessionState::Connecting);
    assert!(
        h.frames().is_empty(),
        "nothing but SASL before SASL is done"
    );
    h.sasl_reply(xid, Some(b"challenge"));
    assert_eq!(h.sasl.last().unwrap().1.as_deref(), Some(&b"challenge"[..]));
    // A ping would be due long before this: none is written while SASL runs.
    h.now += Duration::from_millis(800);
    h.s.handle_timeout(h.now);
    h.pump();
    assert!(h.frames().is_empty());
    h.step(Ok(SaslStep::Send(b"response".to_vec())));
    let f = h.frames();
    assert_eq!(f.len(), 1);
    h.sasl_reply(f[0].1, Some(b"rspauth"));
    assert_eq!(h.s.state(), SessionState::Connecting);
    h.step(Ok(SaslStep::Done));
    assert_eq!(h.s.state(), SessionState::Connected);
    assert_eq!(h.s.session_id(), 0x77);
    // Then the preamble, then the queued request.
    let ops: Vec<_> = h.frames().into_iter().map(|f| f.0).collect();
    assert_eq!(ops, vec![Some(OpCode::Auth), Some(OpCode::Exists)]);
}

#[test]
fn sasl_first_token_computed_while_connecting_rides_behind_the_connect_request() {
    let mut h = Harness::started();
    // The driver was asked for the first token together with the transport.
    assert_eq!(h.sasl.len(), 1);
    assert!(h.sasl[0].1.is_none());
    h.step(Ok(SaslStep::Send(b"ap-req".to_vec())));
    assert!(
        h.frames().is_empty(),
        "nothing before the transport is open"
    );
    h.open();
    let f = h.frames();
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].0, None);
    assert_eq!(f[1].0, Some(OpCode::Sasl));
    // A mechanism that fails before the transport opens: the next server.
    let mut h = Harness::started();
    h.step(Err(SaslError::Unavailable("KDC unreachable".into())));
    assert_eq!(h.connects.len(), 2);
}

#[test]
fn sasl_pipelined_tokens_get_their_answers_in_order() {
    let mut h = Harness::started();
    // Two tokens at once, computed while connecting: both ride behind the ConnectRequest.
    h.step(Ok(SaslStep::SendAll(vec![b"ap-req".to_vec(), Vec::new()])));
    h.open();
    let f = h.frames();
    assert_eq!(f.len(), 3, "{f:?}");
    let (x1, x2) = (f[1].1, f[2].1);
    h.connect_response(0x77);
    // Both answers in one read: the second waits until the mechanism took the first.
    let mut b = BytesMut::new();
    for (xid, t) in [(x1, &b"ap-rep"[..]), (x2, &b"offer"[..])] {
        let mut body = BytesMut::new();
        SetSaslResponse {
            token: Some(Bytes::copy_from_slice(t)),
        }
        .encode(&mut body);
        b.extend_from_slice(&reply_frame(xid, 0, ErrorCode::Ok, &body));
    }
    h.server_sends(&b);
    assert_eq!(h.sasl.len(), 2);
    assert_eq!(h.sasl[1].1.as_deref(), Some(&b"ap-rep"[..]));
    h.step(Ok(SaslStep::Wait));
    assert_eq!(h.sasl.len(), 3);
    assert_eq!(h.sasl[2].1.as_deref(), Some(&b"offer"[..]));
    h.step(Ok(SaslStep::Send(b"choice".to_vec())));
    let f = h.frames();
    assert_eq!(f.len(), 1);
    h.sasl_reply(f[0].1, None);
    h.step(Ok(SaslStep::Done));
    assert_eq!(h.s.state(), SessionState::Connected);
    // A mechanism that waits for nothing, or is done with answers outstanding, is broken.
    for bad in [SaslStep::Wait, SaslStep::SendAll(Vec::new())] {
        let mut h = Harness::opened();
        h.step(Ok(bad));
        assert_eq!(h.connects.len(), 2, "next server");
    }
    let mut h = Harness::opened();
    h.step(Ok(SaslStep::SendAll(vec![b"a".to_vec(), b"b".to_vec()])));
    let f = h.frames();
    h.connect_response(0x77);
    h.sasl_reply(f[1].1, Some(b"1"));
    h.step(Ok(SaslStep::Done));
    assert_eq!(h.connects.len(), 2, "done with an answer outstanding");
}

#[test]
fn sasl_last_token_lets_requests_follow_at_once() {
    for reject in [false, true] {
        let mut h = Harness::new();
        h.s.submit(h.now, read());
        h.s.start(h.now);
        h.pump();
        h.open();
        h.step(Ok(SaslStep::Send(b"ap-req".to_vec())));
        let x1 = h.frames()[1].1;
        h.connect_response(0x77);
        h.sasl_reply(x1, Some(b"offer"));
        h.step(Ok(SaslStep::SendLast(b"choice".to_vec())));
        // Established at once; the preamble and the request ride behind the last token.
        assert_eq!(h.s.state(), SessionState::Connected);
        let f = h.frames();
        let ops: Vec<_> = f.iter().map(|f| f.0).collect();
        assert_eq!(
            ops,
            vec![Some(OpCode::Sasl), Some(OpCode::Auth), Some(OpCode::Exists)]
        );
        if reject {
            // The server's verdict on the last token still counts.
            h.server_sends(&reply_frame(
                f[0].1,
                0,
                ErrorCode::AuthFailed,
                b"\xff\xff\xff\xff",
            ));
            assert_eq!(h.s.state(), SessionState::AuthFailed);
            assert!(matches!(h.completed[..], [Err(RequestError::AuthFailed)]));
        } else {
            h.sasl_reply(f[0].1, None);
            assert_eq!(h.s.state(), SessionState::Connected);
            assert!(h.completed.is_empty());
            h.server_sends(&reply_frame(zk_proto::xid::AUTH, 0, ErrorCode::Ok, b""));
            h.server_sends(&reply_frame(f[2].1, 5, ErrorCode::Ok, b""));
            assert!(matches!(h.completed[..], [Ok(_)]), "{:?}", h.completed);
        }
    }
}

#[test]
fn sasl_final_token_takes_reads_along_and_keeps_writes_for_the_proof() {
    let mut h = Harness::new();
    h.s.submit(h.now, read());
    h.s.submit(
        h.now,
        Request::write(
            OpCode::SetData,
            Bytes::from_static(b"\0\0\0\x02/a\0\0\0\0\xff\xff\xff\xff"),
        ),
    );
    h.s.start(h.now);
    h.pump();
    h.open();
    h.step(Ok(SaslStep::Send(Vec::new())));
    let x1 = h.frames()[1].1;
    h.connect_response(0x77);
    h.sasl_reply(x1, Some(b"challenge"));
    h.step(Ok(SaslStep::SendFinal(b"response".to_vec())));
    let f = h.frames();
    let ops: Vec<_> = f.iter().map(|f| f.0).collect();
    assert_eq!(
        ops,
        vec![Some(OpCode::Sasl), Some(OpCode::Auth), Some(OpCode::Exists)],
        "the preamble and the read ride along; the write waits"
    );
    assert_eq!(h.s.state(), SessionState::Connecting);
    // The proof and the read's reply arrive together: the reply waits for the mechanism.
    let mut b = BytesMut::new();
    let mut body = BytesMut::new();
    SetSaslResponse {
        token: Some(Bytes::from_static(b"rspauth=x")),
    }
    .encode(&mut body);
    b.extend_from_slice(&reply_frame(f[0].1, 0, ErrorCode::Ok, &body));
    b.extend_from_slice(&reply_frame(zk_proto::xid::AUTH, 0, ErrorCode::Ok, b""));
    b.extend_from_slice(&reply_frame(f[2].1, 5, ErrorCode::Ok, b""));
    h.server_sends(&b);
    assert!(h.completed.is_empty());
    h.step(Ok(SaslStep::Done));
    assert_eq!(h.s.state(), SessionState::Connected);
    assert!(matches!(h.completed[..], [Ok(_)]), "{:?}", h.completed);
    let ops: Vec<_> = h.frames().into_iter().map(|f| f.0).collect();
    assert_eq!(ops, vec![Some(OpCode::SetData)], "then the write");
}

#[test]
fn sasl_rejected_by_the_server_is_terminal() {
    for err in [
        ErrorCode::AuthFailed,
        ErrorCode::SessionClosedRequireSaslAuth,
    ] {
        let mut h = Harness::opened();
        h.s.submit(h.now, read());
        h.step(Ok(SaslStep::Send(Vec::new())));
        let xid = h.frames()[1].1;
        h.connect_response(0x77);
        h.server_sends(&reply_frame(xid, 0, err, b"\xff\xff\xff\xff"));
        assert_eq!(h.s.state(), SessionState::AuthFailed, "{err:?}");
        assert!(matches!(h.completed[..], [Err(RequestError::AuthFailed)]));
        assert_eq!(h.connects.len(), 1, "no other server is tried");
    }
}

#[test]
fn sasl_credentials_error_of_the_mechanism_is_terminal() {
    let mut h = Harness::opened();
    h.step(Err(SaslError::Credentials("ticket expired".into())));
    assert_eq!(h.s.state(), SessionState::AuthFailed);
}

#[test]
fn sasl_unavailable_moves_on_with_the_same_session() {
    let mut h = Harness::opened();
    h.establish(0x77);
    assert_eq!(h.s.state(), SessionState::Connected);
    // The connection is lost; on the next server the KDC cannot be reached.
    h.now += Duration::from_millis(10);
    let c = h.conn();
    h.s.handle_closed(h.now, c);
    h.pump();
    assert_eq!(h.connects.len(), 2);
    h.open();
    let second = h.conn();
    h.step(Err(SaslError::Unavailable("KDC unreachable".into())));
    assert_eq!(h.connects.len(), 3, "the next server at once");
    assert_ne!(h.conn(), second);
    h.open();
    let connect = h.server.next_frame().unwrap();
    let ClientFrame::Connect(req) = connect else {
        panic!("first frame");
    };
    assert_eq!(req.session_id, 0x77, "the same session");
    h.establish(0x77);
    assert_eq!(h.s.state(), SessionState::Connected);
    assert_eq!(h.s.session_id(), 0x77);
}

#[test]
fn sasl_silent_server_times_out_to_the_next() {
    let mut h = Harness::opened();
    h.step(Ok(SaslStep::Send(Vec::new())));
    h.connect_response(0x77);
    // The server never answers the SASL token.
    for _ in 0..200 {
        if h.connects.len() > 1 {
            break;
        }
        h.now += Duration::from_millis(100);
        h.s.handle_timeout(h.now);
        h.pump();
    }
    assert_eq!(h.connects.len(), 2, "moved on");
    assert_eq!(h.s.state(), SessionState::Connecting);
}

#[test]
fn hostile_sasl_replies_are_host_failures() {
    let hostile: Vec<Box<dyn Fn(i32) -> Bytes>> = vec![
        // Wrong xid.
        Box::new(|xid| reply_frame(xid + 5, 0, ErrorCode::Ok, b"\0\0\0\0")),
        // A token longer than the frame.
        Box::new(|xid| reply_frame(xid, 0, ErrorCode::Ok, b"\0\0\x10\0abc")),
        // An unexpected error code.
        Box::new(|xid| reply_frame(xid, 0, ErrorCode::MarshallingError, b"")),
        // Shorter than a reply header.
        Box::new(|_| frame(b"\0\0")),
    ];
    for (i, make) in hostile.iter().enumerate() {
        let mut h = Harness::opened();
        h.step(Ok(SaslStep::Send(Vec::new())));
        let xid = h.frames()[1].1;
        h.connect_response(0x77);
        h.server_sends(&make(xid));
        assert_eq!(h.connects.len(), 2, "case {i}: next server");
        assert_eq!(h.s.state(), SessionState::Connecting, "case {i}");
    }
    // A reply nobody asked for, while the driver runs the mechanism: it waits for the step,
    // then fails the connection.
    let mut h = Harness::opened();
    h.step(Ok(SaslStep::Send(Vec::new())));
    let xid = h.frames()[1].1;
    h.connect_response(0x77);
    h.sasl_reply(xid, Some(b"c"));
    let mut b = BytesMut::new();
    b.put_i32(-1);
    h.server_sends(&reply_frame(xid, 0, ErrorCode::Ok, &b));
    assert_eq!(h.connects.len(), 1, "held while the mechanism runs");
    h.step(Ok(SaslStep::Send(b"r".to_vec())));
    assert_eq!(h.connects.len(), 2);
}
