//! Helpers shared by the integration tests: hand-built ZooKeeper frames.
#![allow(dead_code, reason = "each test binary uses a subset")]

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A 45-byte ConnectRequest (protocolVersion 0, lastZxidSeen 0, timeout, sessionId 0,
/// 16-byte zero password, readOnly) with its length prefix.
pub(crate) fn connect_request(timeout_ms: i32, read_only: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(49);
    p.extend_from_slice(&45i32.to_be_bytes());
    p.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    p.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    p.extend_from_slice(&timeout_ms.to_be_bytes());
    p.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    p.extend_from_slice(&16i32.to_be_bytes());
    p.extend_from_slice(&[0u8; 16]);
    p.push(u8::from(read_only));
    assert_eq!(p.len(), 49);
    p
}

/// The parts of a ConnectResponse we check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectResponse {
    pub(crate) timeout_ms: i32,
    pub(crate) session_id: i64,
    pub(crate) read_only: bool,
}

/// Send a ConnectRequest and read the response frame; errors are returned as strings.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    timeout_ms: i32,
    read_only: bool,
) -> Result<(usize, ConnectResponse), String> {
    s.write_all(&connect_request(timeout_ms, read_only))
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .await
        .map_err(|e| format!("read len: {e}"))?;
    let len = i32::from_be_bytes(len);
    let len = usize::try_from(len).map_err(|_| format!("bad length {len}"))?;
    if len > 1024 {
        return Err(format!("bad length {len}"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .await
        .map_err(|e| format!("read body: {e}"))?;
    if len < 36 {
        return Err(format!("short ConnectResponse ({len} bytes)"));
    }
    let timeout_ms = i32::from_be_bytes(body[4..8].try_into().unwrap());
    let session_id = i64::from_be_bytes(body[8..16].try_into().unwrap());
    let read_only = body.get(36).copied() == Some(1);
    Ok((
        len,
        ConnectResponse {
            timeout_ms,
            session_id,
            read_only,
        },
    ))
}

fn put_str(v: &mut Vec<u8>, s: &[u8]) {
    v.extend_from_slice(&i32::try_from(s.len()).unwrap().to_be_bytes());
    v.extend_from_slice(s);
}

/// A create request (opcode 1 create, 19 createContainer, 21 createTTL) with an open ACL.
pub(crate) fn create_request(
    xid: i32,
    opcode: i32,
    path: &str,
    flags: i32,
    ttl: Option<i64>,
) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&xid.to_be_bytes());
    p.extend_from_slice(&opcode.to_be_bytes());
    put_str(&mut p, path.as_bytes());
    put_str(&mut p, b"data");
    p.extend_from_slice(&1i32.to_be_bytes()); // one ACL
    p.extend_from_slice(&31i32.to_be_bytes()); // Perms.ALL
    put_str(&mut p, b"world");
    put_str(&mut p, b"anyone");
    p.extend_from_slice(&flags.to_be_bytes());
    if let Some(ttl) = ttl {
        p.extend_from_slice(&ttl.to_be_bytes());
    }
    let mut framed = i32::try_from(p.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&p);
    framed
}

/// Send a request frame and return the reply's (xid, err).
pub(crate) async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    frame: &[u8],
) -> Result<(i32, i32), String> {
    s.write_all(frame)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .await
        .map_err(|e| format!("read len: {e}"))?;
    let len = usize::try_from(i32::from_be_bytes(len)).map_err(|_| "bad length".to_owned())?;
    if !(16..=1 << 20).contains(&len) {
        return Err(format!("bad reply length {len}"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .await
        .map_err(|e| format!("read body: {e}"))?;
    let xid = i32::from_be_bytes(body[0..4].try_into().unwrap());
    let err = i32::from_be_bytes(body[12..16].try_into().unwrap());
    Ok((xid, err))
}
