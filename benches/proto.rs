//! Criterion benchmarks of the `zk-proto` codec: encoding requests, decoding replies (zero-copy)
//! and splitting a stream into frames.
//!
//! Run with `cargo bench -p zk-bench --bench proto`; smoke-test with `cargo bench -p zk-bench --bench proto -- --test`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use zk_proto::{
    DEFAULT_MAX_OUTBOUND_FRAME, ErrorCode, Frame, FrameDecoder, GetChildren2Request,
    GetChildren2Response, GetDataRequest, GetDataResponse, OpCode, Record, ReplyHeader,
    RequestHeader, Response, Stat, decode_response, write_frame, write_request,
};

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0001,
        mzxid: 0x1_0000_0002,
        ctime: 1_700_000_000_123,
        mtime: 1_700_000_000_456,
        version: 3,
        cversion: 4,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 1024,
        num_children: 1000,
        pzxid: 0x1_0000_0009,
    }
}

/// A reply payload (header + body), as the frame decoder hands it over.
fn reply_payload(body: &impl Record) -> Bytes {
    let mut out = BytesMut::new();
    write_frame(&mut out, usize::MAX, |buf| {
        ReplyHeader {
            xid: 7,
            zxid: 0x1_0000_0068,
            err: ErrorCode::Ok,
        }
        .encode(buf);
        body.encode(buf);
    })
    .ok();
    out.freeze().slice(4..)
}

fn decode_reply(op: OpCode, payload: &Bytes) -> Option<Response> {
    let mut payload = payload.clone();
    let header = ReplyHeader::decode(&mut payload).ok()?;
    black_box(header);
    decode_response(op, payload).ok()
}

fn get_data(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_data");

    let header = RequestHeader {
        xid: 7,
        op: OpCode::GetData,
    };
    let request = GetDataRequest {
        path: "/app/service/config".into(),
        watch: true,
    };
    let mut out = BytesMut::with_capacity(256);
    group.throughput(Throughput::Bytes((4 + 8 + request.encoded_len()) as u64));
    group.bench_function("encode_request", |b| {
        b.iter(|| {
            out.clear();
            write_request(
                &mut out,
                DEFAULT_MAX_OUTBOUND_FRAME,
                black_box(&header),
                black_box(&request),
            )
        });
    });

    let payload = reply_payload(&GetDataResponse {
        data: Some(Bytes::from(vec![0x5a; 1024])),
        stat: stat(),
    });
    // Zero-copy: the data is a slice of the payload (also asserted in zk-proto's tests).
    if let Some(Response::GetData(reply)) = decode_reply(OpCode::GetData, &payload) {
        let data = reply.data.unwrap_or_default();
        assert!(
            payload.as_ptr_range().contains(&data.as_ptr()),
            "getData decode copied"
        );
    }
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("decode_reply_1KiB", |b| {
        b.iter(|| decode_reply(OpCode::GetData, black_box(&payload)));
    });
    group.finish();
}

fn get_children(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_children2");

    let header = RequestHeader {
        xid: 8,
        op: OpCode::GetChildren2,
    };
    let request = GetChildren2Request {
        path: "/app/service/members".into(),
        watch: true,
    };
    let mut out = BytesMut::with_capacity(256);
    group.throughput(Throughput::Bytes((4 + 8 + request.encoded_len()) as u64));
    group.bench_function("encode_request", |b| {
        b.iter(|| {
            out.clear();
            write_request(
                &mut out,
                DEFAULT_MAX_OUTBOUND_FRAME,
                black_box(&header),
                black_box(&request),
            )
        });
    });

    let children: Vec<String> = (0..1000).map(|i| format!("member-{i:010}")).collect();
    let payload = reply_payload(&GetChildren2Response {
        children,
        stat: stat(),
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function("decode_reply_1000_children", |b| {
        b.iter(|| decode_reply(OpCode::GetChildren2, black_box(&payload)));
    });
    group.finish();
}

fn frame_decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decoder");
    // 1,000 frames: pings and 1 KiB getData replies, alternating.
    let mut wire = BytesMut::new();
    let data = GetDataResponse {
        data: Some(Bytes::from(vec![1; 1024])),
        stat: stat(),
    };
    for i in 0..1000 {
        write_frame(&mut wire, usize::MAX, |buf| {
            ReplyHeader {
                xid: if i % 2 == 0 { -2 } else { i },
                zxid: 5,
                err: ErrorCode::Ok,
            }
            .encode(buf);
            if i % 2 == 1 {
                data.encode(buf);
            }
        })
        .ok();
    }
    let wire = wire.freeze();
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("split_1000_frames", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut src| {
                let mut decoder = FrameDecoder::default();
                let mut n = 0_usize;
                while let Ok(Some(Frame::Complete(frame))) = decoder.decode(&mut src) {
                    black_box(frame);
                    n += 1;
                }
                assert_eq!(n, 1000);
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, get_data, get_children, frame_decoder);
criterion_main!(benches);
