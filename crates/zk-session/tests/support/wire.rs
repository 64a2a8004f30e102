//! Frames on the wire for the scripted fake peers of the hostile-server and batching tests.
#![allow(
    clippy::unwrap_used,
    dead_code,
    unreachable_pub,
    reason = "test harness"
)]

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncReadExt;
use zk_proto::{ErrorCode, Record, ReplyHeader};

/// Reads one length-prefixed frame (payload capped at 1 MiB); `None` when the stream ends.
pub async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let len = r.read_u32().await.ok()?;
    let mut payload = vec![0; usize::try_from(len).ok()?.min(1 << 20)];
    r.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// `payload` with its length prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A reply frame: header and body.
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: &[u8]) -> Vec<u8> {
    let mut payload = BytesMut::new();
    ReplyHeader { xid, zxid, err }.encode(&mut payload);
    payload.put_slice(body);
    frame(&payload)
}
