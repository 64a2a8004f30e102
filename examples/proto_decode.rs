//! `zk-proto` on its own: decode bytes captured from a real ZooKeeper 3.8 server — a
//! handshake reply, then a getData reply and a watch notification arriving in one read, split
//! at an awkward place — with no socket, no runtime and no session.
//!
//! The bytes are from `crates/zk-proto/tests/golden/server_frames.txt` (captured from Debian's
//! ZooKeeper 3.8.0).
//!
//! ```text
//! cargo run --example proto_decode
//! ```

use std::error::Error as StdError;

use bytes::{Bytes, BytesMut};
use zk_failover::proto::{
    ConnectResponse, Frame, FrameDecoder, OpCode, Record, ReplyHeader, Response, WatcherEvent,
    decode_response, xid,
};

/// The ConnectResponse payload (the length prefix already stripped): 37 bytes.
const CONNECT_RESPONSE: &str =
    "0000000000000fa0010000132e78000000000010fa49408fff4ce38b68ae098ce0fa52e000";
/// A getData reply (xid 10, data "hi") followed by a notification (xid -1, NodeDataChanged /zkp),
/// length-prefixed, as one read from the socket.
const STREAM: &str = concat!(
    "0000005a0000000a00000000000000080000000000000002686900000000000000020000000000000002",
    "000001a21e586ac1000001a21e586ac100000000000000040000000000000000000000000000000200000004",
    "0000000000000006",
    "00000020ffffffffffffffffffffffff000000000000000300000003000000042f7a6b70",
);

fn hex(s: &str) -> Result<Vec<u8>, Box<dyn StdError>> {
    (0..s.len())
        .step_by(2)
        .map(|i| {
            let pair = s.get(i..i + 2).ok_or("odd hex length")?;
            Ok(u8::from_str_radix(pair, 16)?)
        })
        .collect()
}

fn main() -> Result<(), Box<dyn StdError>> {
    // 1. The handshake reply: strict about its length (36 or 37 bytes).
    let connect = ConnectResponse::decode_payload(Bytes::from(hex(CONNECT_RESPONSE)?))?;
    println!(
        "ConnectResponse: session {:#x}, negotiated timeout {} ms, read-only {}, password {} bytes",
        connect.session_id,
        connect.timeout,
        connect.read_only,
        connect.passwd.len()
    );

    // 2. Frames: feed the decoder whatever the socket returned, in any chunking.
    let stream = hex(STREAM)?;
    let (first, second) = stream.split_at(41); // mid-way through the first frame
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    // The session knows which request each xid was: here xid 10 was a getData.
    let pending = |x: i32| (x == 10).then_some(OpCode::GetData);
    for chunk in [first, second] {
        buf.extend_from_slice(chunk);
        println!("read {} bytes", chunk.len());
        while let Some(frame) = decoder.decode(&mut buf)? {
            let Frame::Complete(mut payload) = frame else {
                println!("  oversized frame skipped");
                continue;
            };
            let header = ReplyHeader::decode(&mut payload)?;
            // Notifications (xid -1) come first: they answer no request.
            if header.xid == xid::NOTIFICATION {
                let event = WatcherEvent::decode(&mut payload)?;
                println!(
                    "  notification: {:?} on {} (state {:?})",
                    event.typed_event_type(),
                    event.path,
                    event.keeper_state()
                );
                continue;
            }
            let Some(op) = pending(header.xid) else {
                println!("  reply to unknown xid {}", header.xid);
                continue;
            };
            match decode_response(op, payload)? {
                Response::GetData(r) => println!(
                    "  reply xid {} zxid {:#x} {:?}: data {:?}, version {}, data length {}",
                    header.xid,
                    header.zxid,
                    header.err,
                    String::from_utf8_lossy(r.data.as_deref().unwrap_or_default()),
                    r.stat.version,
                    r.stat.data_length
                ),
                other => println!("  reply xid {}: {other:?}", header.xid),
            }
        }
        if !decoder.is_idle() || !buf.is_empty() {
            println!("  ({} bytes of a partial frame buffered)", buf.len());
        }
    }
    Ok(())
}
