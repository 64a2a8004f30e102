//! Golden vectors produced by the real ZooKeeper 3.8 Java classes (see `golden/vectors.txt`
//! for how they were captured): every vector decodes, and re-encodes byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use zk_proto::*;

const VECTORS: &str = include_str!("golden/vectors.txt");
const SERVER_FRAMES: &str = include_str!("golden/server_frames.txt");

struct Vector {
    kind: String,
    name: String,
    bytes: Bytes,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<Vector> {
    parse(VECTORS)
}

fn parse(text: &str) -> Vec<Vector> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split(' ');
            let kind = parts.next().unwrap().to_owned();
            let name = parts.next().unwrap().to_owned();
            let bytes = Bytes::from(hex(parts.next().unwrap()));
            assert!(parts.next().is_none(), "extra field in {l}");
            Vector { kind, name, bytes }
        })
        .collect()
}

/// Decodes a whole record and checks the byte-exact re-encoding.
fn exact<R: Record + std::fmt::Debug>(v: &Vector) -> R {
    let record: R =
        decode_exact(v.bytes.clone()).unwrap_or_else(|e| panic!("{} {}: {e}", v.kind, v.name));
    assert_eq!(
        record.encoded_len(),
        v.bytes.len(),
        "{}: encoded_len",
        v.name
    );
    assert_eq!(
        record.to_bytes(),
        v.bytes,
        "{}: re-encoding differs",
        v.name
    );
    record
}

/// The string GenGolden uses for its `~cesu8` vectors.
const SUPPLEMENTARY: &str = "/\u{1f600}/x\u{10000}";

/// For records holding supplementary characters, which Java writes as CESU-8: decodes, and
/// checks that the (standard UTF-8) re-encoding decodes to the same value.
fn semantic<R: Record + std::fmt::Debug + PartialEq>(v: &Vector) -> R {
    let record: R =
        decode_exact(v.bytes.clone()).unwrap_or_else(|e| panic!("{} {}: {e}", v.kind, v.name));
    let again: R = decode_exact(record.to_bytes()).unwrap();
    assert_eq!(again, record);
    // Each supplementary character is 6 bytes in CESU-8 and 4 in UTF-8.
    assert_eq!(record.encoded_len() + 4, v.bytes.len());
    record
}

fn single_frame(v: &Vector) -> Bytes {
    let mut src = BytesMut::from(&v.bytes[..]);
    let frame = FrameDecoder::default().decode(&mut src).unwrap();
    assert!(src.is_empty(), "{}: bytes after the frame", v.name);
    match frame {
        Some(Frame::Complete(payload)) => payload,
        other => panic!("{}: expected one complete frame, got {other:?}", v.name),
    }
}

fn check(v: &Vector) {
    match v.kind.as_str() {
        "Stat" => drop(exact::<Stat>(v)),
        "Id" => drop(exact::<Id>(v)),
        "Acl" => drop(exact::<Acl>(v)),
        "ClientInfo" => drop(exact::<ClientInfo>(v)),
        "ConnectRequest" => {
            let r = exact::<ConnectRequest>(v);
            assert_eq!(r.encoded_len(), 45);
        }
        "ConnectRequest44" => {
            // The pre-3.4 form without readOnly: decodes as readOnly=false, re-encodes in the
            // 45-byte form.
            let r: ConnectRequest = decode_exact(v.bytes.clone()).unwrap();
            assert!(!r.read_only);
            assert_eq!(r.to_bytes()[..44], v.bytes[..]);
            assert_eq!(r.to_bytes()[44], 0);
        }
        "ConnectResponse" => {
            let r = exact::<ConnectResponse>(v);
            assert_eq!(ConnectResponse::decode_payload(v.bytes.clone()), Ok(r));
        }
        "ConnectResponse36" => {
            let r = ConnectResponse::decode_payload(v.bytes.clone()).unwrap();
            assert!(!r.read_only);
            assert_eq!(r.to_bytes()[..36], v.bytes[..]);
        }
        "RequestHeader" => drop(exact::<RequestHeader>(v)),
        "ReplyHeader" => drop(exact::<ReplyHeader>(v)),
        "WatcherEvent" => drop(exact::<WatcherEvent>(v)),
        "CreateRequest" => drop(exact::<CreateRequest>(v)),
        "CreateTtlRequest" => drop(exact::<CreateTtlRequest>(v)),
        "CreateResponse" => drop(exact::<CreateResponse>(v)),
        "Create2Response" => drop(exact::<Create2Response>(v)),
        "DeleteRequest" => drop(exact::<DeleteRequest>(v)),
        "ExistsRequest" => drop(exact::<ExistsRequest>(v)),
        "ExistsResponse" => drop(exact::<ExistsResponse>(v)),
        "GetDataRequest" => drop(exact::<GetDataRequest>(v)),
        "GetDataResponse" => drop(exact::<GetDataResponse>(v)),
        "SetDataRequest" => drop(exact::<SetDataRequest>(v)),
        "SetDataResponse" => drop(exact::<SetDataResponse>(v)),
        "GetAclRequest" => drop(exact::<GetAclRequest>(v)),
        "GetAclResponse" => drop(exact::<GetAclResponse>(v)),
        "SetAclRequest" => drop(exact::<SetAclRequest>(v)),
        "SetAclResponse" => drop(exact::<SetAclResponse>(v)),
        "GetChildrenRequest" => drop(exact::<GetChildrenRequest>(v)),
        "GetChildrenResponse" => drop(exact::<GetChildrenResponse>(v)),
        "GetChildren2Request" => drop(exact::<GetChildren2Request>(v)),
        "GetChildren2Response" => drop(exact::<GetChildren2Response>(v)),
        "SyncRequest" => drop(exact::<SyncRequest>(v)),
        "SyncResponse" => drop(exact::<SyncResponse>(v)),
        "CheckVersionRequest" => drop(exact::<CheckVersionRequest>(v)),
        "ErrorResponse" => drop(exact::<ErrorResponse>(v)),
        "SetWatches" => drop(exact::<SetWatches>(v)),
        "SetWatches2" => drop(exact::<SetWatches2>(v)),
        "AddWatchRequest" => drop(exact::<AddWatchRequest>(v)),
        "RemoveWatchesRequest" => drop(exact::<RemoveWatchesRequest>(v)),
        "CheckWatchesRequest" => drop(exact::<CheckWatchesRequest>(v)),
        "GetEphemeralsRequest" => drop(exact::<GetEphemeralsRequest>(v)),
        "GetEphemeralsResponse" => drop(exact::<GetEphemeralsResponse>(v)),
        "GetAllChildrenNumberRequest" => drop(exact::<GetAllChildrenNumberRequest>(v)),
        "GetAllChildrenNumberResponse" => drop(exact::<GetAllChildrenNumberResponse>(v)),
        "WhoAmIResponse" => drop(exact::<WhoAmIResponse>(v)),
        "AuthPacket" => drop(exact::<AuthPacket>(v)),
        "GetSaslRequest" => drop(exact::<GetSaslRequest>(v)),
        "SetSaslResponse" => drop(exact::<SetSaslResponse>(v)),
        "ReconfigRequest" => drop(exact::<ReconfigRequest>(v)),
        "MultiHeader" => drop(exact::<MultiHeader>(v)),
        "MultiRequest" => drop(exact::<MultiRequest>(v)),
        "MultiResponse" => drop(exact::<MultiResponse>(v)),
        "WatcherEvent~cesu8" => {
            let e: WatcherEvent = semantic(v);
            assert_eq!(e.path, SUPPLEMENTARY);
        }
        "GetChildrenResponse~cesu8" => {
            let r: GetChildrenResponse = semantic(v);
            assert_eq!(r.children, [&SUPPLEMENTARY[1..], "b"]);
        }
        "connect_frame" => {
            let payload = single_frame(v);
            let request: ConnectRequest = decode_exact(payload).unwrap();
            let mut out = BytesMut::new();
            write_record(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &request).unwrap();
            assert_eq!(out, v.bytes, "{}: re-framed connect differs", v.name);
        }
        "request_frame" => {
            let mut payload = single_frame(v);
            let header = RequestHeader::decode(&mut payload).unwrap();
            let request =
                decode_request(header.op, payload).unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(request.op_code(), header.op);
            let mut out = BytesMut::new();
            write_frame(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, |buf| {
                header.encode(buf);
                request.encode(buf);
            })
            .unwrap();
            assert_eq!(out, v.bytes, "{}: re-framed request differs", v.name);
        }
        kind if kind.starts_with("reply_frame:") => {
            let op = OpCode::from(kind["reply_frame:".len()..].parse::<i32>().unwrap());
            let mut payload = single_frame(v);
            let header = ReplyHeader::decode(&mut payload).unwrap();
            let mut out = BytesMut::new();
            if header.xid == xid::NOTIFICATION {
                let event: WatcherEvent = decode_exact(payload).unwrap();
                write_frame(&mut out, usize::MAX, |buf| {
                    header.encode(buf);
                    event.encode(buf);
                })
                .unwrap();
            } else if !header.err.is_ok() {
                assert!(payload.is_empty(), "{}: error reply with a body", v.name);
                write_record(&mut out, usize::MAX, &header).unwrap();
            } else {
                let response =
                    decode_response(op, payload).unwrap_or_else(|e| panic!("{}: {e}", v.name));
                write_frame(&mut out, usize::MAX, |buf| {
                    header.encode(buf);
                    response.encode(buf);
                })
                .unwrap();
            }
            assert_eq!(out, v.bytes, "{}: re-framed reply differs", v.name);
        }
        other => panic!("unknown vector kind {other}"),
    }
}

#[test]
fn every_golden_vector_round_trips_byte_for_byte() {
    let all = vectors();
    assert!(all.len() > 100, "only {} vectors", all.len());
    for v in &all {
        check(v);
    }
}

#[test]
fn real_server_reply_frames_round_trip_byte_for_byte() {
    let all = parse(SERVER_FRAMES);
    assert!(all.len() >= 40, "only {} server frames", all.len());
    for v in &all {
        check(v);
    }
    let get = |name: &str| all.iter().find(|v| v.name == name).unwrap().bytes.clone();
    // A node created with null data reads back as null (-1), not empty.
    let mut payload = get("server_get_data_null").slice(4..);
    ReplyHeader::decode(&mut payload).unwrap();
    let Response::GetData(reply) = decode_response(OpCode::GetData, payload).unwrap() else {
        panic!("not a getData reply");
    };
    assert_eq!(reply.data, None);
    // addWatch replies carry an ErrorResponse body.
    let mut payload = get("server_add_watch").slice(4..);
    ReplyHeader::decode(&mut payload).unwrap();
    assert_eq!(
        decode_response(OpCode::AddWatch, payload),
        Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
    );
    // Paths with supplementary characters are refused.
    let header: ReplyHeader = decode_exact(get("server_create_emoji").slice(4..)).unwrap();
    assert_eq!(header.err, ErrorCode::BadArguments);
    let response = ConnectResponse::decode_payload(get("server_connect_response")).unwrap();
    assert_eq!(response.timeout, 4000);
}

#[test]
fn golden_vectors_cover_every_record_and_opcode() {
    let all = vectors();
    let kinds: BTreeSet<&str> = all.iter().map(|v| v.kind.as_str()).collect();
    for kind in [
        "Stat",
        "Id",
        "Acl",
        "ClientInfo",
        "ConnectRequest",
        "ConnectRequest44",
        "ConnectResponse",
        "ConnectResponse36",
        "RequestHeader",
        "ReplyHeader",
        "WatcherEvent",
        "CreateRequest",
        "CreateTtlRequest",
        "CreateResponse",
        "Create2Response",
        "DeleteRequest",
        "ExistsRequest",
        "ExistsResponse",
        "GetDataRequest",
        "GetDataResponse",
        "SetDataRequest",
        "SetDataResponse",
        "GetAclRequest",
        "GetAclResponse",
        "SetAclRequest",
        "SetAclResponse",
        "GetChildrenRequest",
        "GetChildrenResponse",
        "GetChildren2Request",
        "GetChildren2Response",
        "SyncRequest",
        "SyncResponse",
        "CheckVersionRequest",
        "ErrorResponse",
        "SetWatches",
        "SetWatches2",
        "AddWatchRequest",
        "RemoveWatchesRequest",
        "CheckWatchesRequest",
        "GetEphemeralsRequest",
        "GetEphemeralsResponse",
        "GetAllChildrenNumberRequest",
        "GetAllChildrenNumberResponse",
        "WhoAmIResponse",
        "AuthPacket",
        "GetSaslRequest",
        "SetSaslResponse",
        "ReconfigRequest",
        "MultiHeader",
        "MultiRequest",
        "MultiResponse",
        "connect_frame",
        "request_frame",
    ] {
        assert!(kinds.contains(kind), "no golden vector of kind {kind}");
    }
    // Every opcode a client sends has a request frame built by the Java client.
    let mut request_ops = BTreeSet::new();
    for v in all.iter().filter(|v| v.kind == "request_frame") {
        let mut payload = v.bytes.slice(4..);
        request_ops.insert(RequestHeader::decode(&mut payload).unwrap().op.as_i32());
    }
    for op in [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 100, 101, 102, 103, 104,
        105, 106, 107, -11,
    ] {
        assert!(
            request_ops.contains(&op),
            "no request frame for opcode {op}"
        );
    }
}

#[test]
fn golden_specifics() {
    let all = vectors();
    let get = |name: &str| all.iter().find(|v| v.name == name).unwrap().bytes.clone();

    let r: GetDataResponse = decode_exact(get("get_data_response_null")).unwrap();
    assert_eq!(r.data, None);
    let r: GetDataResponse = decode_exact(get("get_data_response_empty")).unwrap();
    assert_eq!(r.data, Some(Bytes::new()));

    let e: WatcherEvent = decode_exact(get("event_unicode")).unwrap();
    assert_eq!(e.path, "/t\u{e9}st/\u{65e5}\u{672c}");
    assert_eq!(e.typed_event_type(), EventType::NodeCreated);
    assert_eq!(e.keeper_state(), KeeperState::SyncConnected);

    let h: ReplyHeader = decode_exact(get("reply_header_unknown_code")).unwrap();
    assert_eq!(h.err, ErrorCode::Unknown(-126));
    let h: ReplyHeader = decode_exact(get("reply_header_session_moved")).unwrap();
    assert_eq!(h.err, ErrorCode::SessionMoved);

    let m: MultiRequest = decode_exact(get("multi")).unwrap();
    let ops: Vec<OpCode> = m.ops.iter().map(MultiOp::op_code).collect();
    assert_eq!(
        ops,
        [
            OpCode::Create,
            OpCode::Create,
            OpCode::CreateContainer,
            OpCode::CreateTtl,
            OpCode::SetData,
            OpCode::Check,
            OpCode::Delete
        ]
    );
    assert_eq!(m.op_code(), OpCode::Multi);
    let m: MultiRequest = decode_exact(get("multi_read")).unwrap();
    assert_eq!(m.op_code(), OpCode::MultiRead);

    let m: MultiResponse = decode_exact(get("multi_response_failed")).unwrap();
    assert_eq!(
        m.results,
        [
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency)
        ]
    );
    assert_eq!(m.first_error(), Some(ErrorCode::NoNode));

    let c = ConnectResponse::decode_payload(get("connect_response_expired")).unwrap();
    assert!(c.is_expired());
    let c = ConnectResponse::decode_payload(get("connect_response_read_only")).unwrap();
    assert!(c.read_only && !c.is_expired());

    // Reference §9: the 16-byte NotReadOnly ReplyHeader must not parse as a ConnectResponse.
    assert_eq!(
        ConnectResponse::decode_payload(get("reply_header_not_read_only")),
        Err(DecodeError::BadConnectResponseLength(16))
    );
}
