//! Fuzzing entry points, shared by the `fuzz/` targets and the corpus replay test.
//!
//! Each function takes arbitrary bytes, must never panic except on a broken invariant (which
//! is what a fuzzer reports), and checks round-trip properties on whatever decodes.

use bytes::{Bytes, BytesMut};

use crate::{
    ConnectRequest, ConnectResponse, DecodeError, Frame, FrameDecoder, FrameError, OpCode, Record,
    ReplyHeader, WatcherEvent, decode_exact, decode_response, xid,
};

/// Every opcode the response decoder distinguishes, plus one unknown code.
pub const ALL_OPCODES: [i32; 34] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102,
    103, 104, 105, 106, 107, -10, -11, -1, 999,
];

/// Splits a stream fed in random chunks; compares with feeding it in one piece.
///
/// Byte 0 picks the limits, bytes 1..9 seed the chunk sizes, the rest is the stream.
pub fn frame_decoder(data: &[u8]) {
    let (Some(&limits), Some(seed)) = (data.first(), data.get(1..9)) else {
        return;
    };
    let stream = &data[9..];
    let max_frame = 8 + usize::from(limits & 0x3f) * 16;
    let max_discard = max_frame + usize::from(limits >> 6) * 256;
    let mut seed = u64::from_le_bytes(seed.try_into().unwrap_or([0; 8])) | 1;

    let reference = run_decoder(max_frame, max_discard, &[stream]);

    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift64
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = usize::try_from(seed % 24).unwrap_or(1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
    }
    let chunked = run_decoder(max_frame, max_discard, &chunks);
    assert_eq!(reference, chunked, "chunking changed the frames");

    for frame in &reference.0 {
        match frame {
            Frame::Complete(payload) => {
                assert!(payload.len() <= max_frame);
                reply(payload.clone());
            }
            Frame::Oversized { prefix, len } => {
                assert!(*len > max_frame && *len <= max_discard);
                assert_eq!(prefix.len(), (*len).min(16));
            }
        }
    }
}

type DecoderRun = (Vec<Frame>, Option<FrameError>);

fn run_decoder(max_frame: usize, max_discard: usize, chunks: &[&[u8]]) -> DecoderRun {
    let mut decoder = FrameDecoder::new(max_frame, max_discard);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        src.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(err) => return (frames, Some(err)),
            }
        }
        // Waiting for input, the decoder holds less than one frame (or oversized prefix).
        assert!(src.len() < 4 + max_frame.max(crate::OVERSIZED_PREFIX_LEN));
    }
    (frames, None)
}

/// Decodes a reply frame payload: header, then a notification or (for each opcode) a body.
fn reply(mut payload: Bytes) {
    let Ok(header) = ReplyHeader::decode(&mut payload) else {
        return;
    };
    if header.xid == xid::NOTIFICATION {
        let _ = round_trip::<WatcherEvent>(payload);
    } else if header.err.is_ok() {
        for op in ALL_OPCODES {
            response_round_trip(OpCode::from(op), payload.clone());
        }
    }
}

/// Decodes `data` as the response body of every opcode and round-trips what decodes.
pub fn reply_decode(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    for op in ALL_OPCODES {
        response_round_trip(OpCode::from(op), body.clone());
    }
    reply(body);
}

fn response_round_trip(op: OpCode, body: Bytes) {
    let Ok(response) = decode_response(op, body) else {
        return;
    };
    let mut out = BytesMut::new();
    response.encode(&mut out);
    assert_eq!(out.len(), response.encoded_len());
    let again = decode_response(op, out.freeze());
    assert_eq!(
        again,
        Ok(response),
        "re-encoded response differs for {op:?}"
    );
}

fn round_trip<R: Record + PartialEq + std::fmt::Debug>(bytes: Bytes) -> Result<R, DecodeError> {
    let record = decode_exact::<R>(bytes)?;
    let encoded = record.to_bytes();
    assert_eq!(encoded.len(), record.encoded_len());
    assert_eq!(decode_exact::<R>(encoded).as_ref(), Ok(&record));
    Ok(record)
}

/// Decodes `data` as a WatcherEvent, and as a whole notification payload.
pub fn watcher_event(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(event) = round_trip::<WatcherEvent>(bytes.clone()) {
        let _ = event.typed_event_type();
        let _ = event.keeper_state();
    }
    reply(bytes);
}

/// Decodes `data` as a ConnectResponse payload (strictly) and as a ConnectRequest.
pub fn connect_response(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(response) = ConnectResponse::decode_payload(bytes.clone()) {
        // Strict parsing means the encoding is exact (the 36-byte form gains the readOnly byte).
        let encoded = response.to_bytes();
        assert_eq!(encoded.len(), ConnectResponse::LEN_WITH_READ_ONLY);
        assert_eq!(&encoded[..data.len()], data);
        let _ = response.is_expired();
    }
    let _ = round_trip::<ConnectRequest>(bytes);
}
