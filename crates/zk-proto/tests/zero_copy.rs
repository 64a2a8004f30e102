//! The decode path does not copy payload bytes: frames and `buffer` fields are slices of the
//! bytes the transport read.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use bytes::{Bytes, BytesMut};
use zk_proto::*;

#[test]
fn get_data_reply_data_points_into_the_input_buffer() {
    let mut wire = BytesMut::new();
    write_frame(&mut wire, usize::MAX, |buf| {
        ReplyHeader {
            xid: 1,
            zxid: 2,
            err: ErrorCode::Ok,
        }
        .encode(buf);
        GetDataResponse {
            data: Some(Bytes::from(vec![7; 1024])),
            stat: Stat::default(),
        }
        .encode(buf);
    })
    .unwrap();
    let input = wire.as_ptr_range();

    let Some(Frame::Complete(mut payload)) = FrameDecoder::default().decode(&mut wire).unwrap()
    else {
        panic!("no frame");
    };
    assert!(
        input.contains(&payload.as_ptr()),
        "frame payload was copied"
    );
    ReplyHeader::decode(&mut payload).unwrap();
    let Response::GetData(reply) = decode_response(OpCode::GetData, payload).unwrap() else {
        panic!("not a getData response");
    };
    let data = reply.data.unwrap();
    assert_eq!(data.len(), 1024);
    assert!(input.contains(&data.as_ptr()), "getData data was copied");
    assert!(input.contains(&data.as_ptr().wrapping_add(1023)));
}

#[test]
fn sasl_and_multi_read_buffers_are_zero_copy() {
    let body = MultiResponse {
        results: vec![MultiResult::GetData(GetDataResponse {
            data: Some(Bytes::from_static(b"abc")),
            stat: Stat::default(),
        })],
    }
    .to_bytes();
    let range = body.as_ptr_range();
    let Response::Multi(multi) = decode_response(OpCode::MultiRead, body).unwrap() else {
        panic!("not a multi response");
    };
    let MultiResult::GetData(GetDataResponse {
        data: Some(data), ..
    }) = &multi.results[0]
    else {
        panic!("not a getData result");
    };
    assert!(range.contains(&data.as_ptr()));
}
