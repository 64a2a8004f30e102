//! Malformed input yields typed errors, never a panic or an outsized allocation.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::*;

fn connect_response(
    len_without_read_only: usize,
    passwd_len: usize,
    read_only: Option<u8>,
) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i32(4000);
    b.put_i64(0x0100_0003_a9a2_0000);
    b.put_i32(i32::try_from(passwd_len).unwrap());
    b.put_bytes(0xab, passwd_len);
    assert_eq!(b.len(), len_without_read_only);
    if let Some(ro) = read_only {
        b.put_u8(ro);
    }
    b.freeze()
}

#[test]
fn connect_response_is_strict_about_length() {
    let ok = connect_response(36, 16, Some(1));
    let parsed = ConnectResponse::decode_payload(ok.clone()).unwrap();
    assert!(parsed.read_only);
    assert_eq!(parsed.timeout, 4000);
    let parsed = ConnectResponse::decode_payload(ok.slice(..36)).unwrap();
    assert!(!parsed.read_only);
    for len in (0..64).filter(|l| *l != 36 && *l != 37) {
        let mut payload = BytesMut::from(&ok[..len.min(37)]);
        payload.resize(len, 0);
        assert_eq!(
            ConnectResponse::decode_payload(payload.freeze()),
            Err(DecodeError::BadConnectResponseLength(len)),
            "length {len}"
        );
    }
    // Right total length, wrong password length (15 bytes + a readOnly byte = 36).
    assert_eq!(
        ConnectResponse::decode_payload(connect_response(35, 15, Some(0))),
        Err(DecodeError::BadPasswordLength(15))
    );
    // A readOnly byte other than 0/1.
    assert_eq!(
        ConnectResponse::decode_payload(connect_response(36, 16, Some(2))),
        Err(DecodeError::InvalidBool(2))
    );
    // Reference §9: the NotReadOnly reply header a 3.8 server sends instead of a response.
    let not_read_only =
        Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0x89]);
    assert_eq!(
        ConnectResponse::decode_payload(not_read_only.clone()),
        Err(DecodeError::BadConnectResponseLength(16))
    );
    let header: ReplyHeader = decode_exact(not_read_only).unwrap();
    assert_eq!(header.err, ErrorCode::NotReadOnly);
}

#[test]
fn connect_request_encodes_45_bytes() {
    let request = ConnectRequest {
        timeout: 4000,
        passwd: Bytes::from_static(&[0; 16]),
        ..ConnectRequest::default()
    };
    let mut out = BytesMut::new();
    assert_eq!(
        write_record(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &request),
        Ok(45)
    );
    // Reference §1, byte for byte.
    let expected = "0000002d\
        00000000 0000000000000000 00000fa0 0000000000000000 00000010 \
        00000000000000000000000000000000 00";
    let expected: Vec<u8> = expected
        .split_whitespace()
        .collect::<String>()
        .as_bytes()
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect();
    assert_eq!(&out[..], &expected[..]);
}

#[test]
fn notification_frame_from_the_reference() {
    // Reference §6: a NodeDataChanged notification.
    let mut src = BytesMut::from(
        &[
            0x00, 0x00, 0x00, 0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03,
            0x00, 0x00, 0x00, 0x05, 0x2f, 0x74, 0x36, 0x2f, 0x64,
        ][..],
    );
    let Some(Frame::Complete(mut payload)) = FrameDecoder::default().decode(&mut src).unwrap()
    else {
        panic!("no frame");
    };
    let header = ReplyHeader::decode(&mut payload).unwrap();
    assert_eq!(
        (header.xid, header.zxid, header.err),
        (xid::NOTIFICATION, -1, ErrorCode::Ok)
    );
    let event: WatcherEvent = decode_exact(payload).unwrap();
    assert_eq!(event.typed_event_type(), EventType::NodeDataChanged);
    assert_eq!(event.keeper_state(), KeeperState::SyncConnected);
    assert_eq!(event.path, "/t6/d");
}

#[test]
fn multi_framing_errors() {
    // A terminator with a type other than -1.
    let mut b = BytesMut::new();
    MultiHeader {
        op_type: 1,
        done: true,
        err: -1,
    }
    .encode(&mut b);
    assert_eq!(
        decode_exact::<MultiRequest>(b.freeze()),
        Err(DecodeError::BadMultiHeader {
            op_type: 1,
            done: true
        })
    );
    // An op type that cannot appear in a multi.
    let mut b = BytesMut::new();
    MultiHeader {
        op_type: 11,
        done: false,
        err: -1,
    }
    .encode(&mut b);
    MultiHeader::TERMINATOR.encode(&mut b);
    assert_eq!(
        decode_exact::<MultiRequest>(b.clone().freeze()),
        Err(DecodeError::InvalidMultiOpType(11))
    );
    assert_eq!(
        decode_exact::<MultiResponse>(b.freeze()),
        Err(DecodeError::InvalidMultiOpType(11))
    );
    // No terminator.
    let mut b = BytesMut::new();
    MultiHeader {
        op_type: 2,
        done: false,
        err: 0,
    }
    .encode(&mut b);
    assert!(matches!(
        decode_exact::<MultiResponse>(b.freeze()),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

#[test]
fn responses_by_opcode() {
    assert_eq!(
        decode_response(OpCode::Ping, Bytes::new()),
        Ok(Response::Empty)
    );
    assert_eq!(
        decode_response(OpCode::Delete, Bytes::from_static(&[0])),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    assert_eq!(
        decode_response(OpCode::Unknown(999), Bytes::new()),
        Err(DecodeError::UnexpectedOpCode(999))
    );
    assert_eq!(
        decode_response(OpCode::Notification, Bytes::new()),
        Err(DecodeError::UnexpectedOpCode(0))
    );
    let body = GetAllChildrenNumberResponse { total_number: 7 }.to_bytes();
    assert_eq!(
        decode_response(OpCode::GetAllChildrenNumber, body),
        Ok(Response::GetAllChildrenNumber(
            GetAllChildrenNumberResponse { total_number: 7 }
        ))
    );
}

#[test]
fn huge_counts_inside_records_are_rejected_before_allocating() {
    // GetChildren2Response claiming 2^31-1 children in a 100-byte body.
    let mut b = BytesMut::new();
    b.put_i32(i32::MAX);
    b.put_bytes(0, 96);
    assert_eq!(
        decode_exact::<GetChildren2Response>(b.freeze()),
        Err(DecodeError::LengthTooLarge {
            len: i32::MAX as usize,
            remaining: 96
        })
    );
    // An ACL list whose elements need at least 12 bytes each.
    let mut b = BytesMut::new();
    b.put_i32(9);
    b.put_bytes(0, 100);
    assert_eq!(
        decode_exact::<GetAclResponse>(b.freeze()),
        Err(DecodeError::LengthTooLarge {
            len: 9,
            remaining: 100
        })
    );
}

#[test]
fn outbound_limit_applies_to_whole_requests() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let header = RequestHeader {
        xid: 1,
        op: OpCode::SetData,
    };
    // Payload = 8 (header) + 4+1 (path "/") + 4+n (data) + 4 (version) = n + 21.
    let fits = SetDataRequest {
        path: "/".into(),
        data: Bytes::from(vec![0; DEFAULT_MAX_OUTBOUND_FRAME - 21]),
        version: -1,
    };
    assert_eq!(
        write_request(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &header, &fits),
        Ok(DEFAULT_MAX_OUTBOUND_FRAME)
    );
    out.truncate(4);
    let too_big = SetDataRequest {
        data: Bytes::from(vec![0; DEFAULT_MAX_OUTBOUND_FRAME - 20]),
        ..fits
    };
    assert_eq!(
        write_request(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &header, &too_big),
        Err(EncodeError::FrameTooLarge {
            len: DEFAULT_MAX_OUTBOUND_FRAME + 1,
            max: DEFAULT_MAX_OUTBOUND_FRAME
        })
    );
    assert_eq!(&out[..], b"keep");
}

#[test]
fn maximal_get_data_reply_fits_the_default_inbound_limit() {
    // Reference §7: a maximal getData reply is 1,048,612 bytes.
    let reply_len = ReplyHeader::LEN
        + GetDataResponse {
            data: Some(Bytes::from(vec![0; 1_048_524])),
            stat: Stat::default(),
        }
        .encoded_len();
    assert_eq!(reply_len, 1_048_612);
    assert!(reply_len > DEFAULT_MAX_OUTBOUND_FRAME);
    assert!(reply_len <= DEFAULT_MAX_INBOUND_FRAME);
}

#[test]
fn error_messages_are_readable() {
    assert_eq!(
        DecodeError::BadConnectResponseLength(16).to_string(),
        "ConnectResponse payload is 16 bytes, expected 36 or 37"
    );
    assert_eq!(
        ErrorCode::NotReadOnly.to_string(),
        "not a read-only call (server is read-only) (-119)"
    );
    assert_eq!(ErrorCode::Unknown(-999).to_string(), "unknown error (-999)");
}
