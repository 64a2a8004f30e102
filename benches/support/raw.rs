//! The physical floor: a bare TCP connect plus ConnectRequest/ConnectResponse for an existing
//! session, with `zk-proto` records over a raw tokio `TcpStream`; and the bare protocol failing
//! over once right after a crash (`fail_over_once`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::{
    ConnectRequest, ConnectResponse, DEFAULT_MAX_OUTBOUND_FRAME, GetDataRequest, OpCode,
    RequestHeader, write_record, write_request,
};
use zk_transport::{Target, TlsConnector};

/// A session owned by raw handshakes.
#[derive(Debug, Clone)]
pub(crate) struct RawSession {
    pub(crate) id: i64,
    pub(crate) passwd: Bytes,
}

/// One handshake: connect, send the ConnectRequest, read the ConnectResponse. Errors are strings
/// (bench code); a zero timeout (expired) is an error.
pub(crate) async fn handshake(
    addr: SocketAddr,
    session: Option<&RawSession>,
    timeout_ms: i32,
) -> Result<(ConnectResponse, TcpStream), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let resp = exchange(&mut stream, session, timeout_ms).await?;
    Ok((resp, stream))
}

/// ConnectRequest/ConnectResponse on an open stream (plain or TLS).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: Option<&RawSession>,
    timeout_ms: i32,
) -> Result<ConnectResponse, String> {
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: timeout_ms,
        session_id: session.map_or(0, |s| s.id),
        passwd: session.map_or_else(
            || Bytes::from_static(&[0; ConnectRequest::PASSWD_LEN]),
            |s| s.passwd.clone(),
        ),
        read_only: false,
    };
    let mut out = BytesMut::with_capacity(64);
    write_record(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &req).map_err(|e| e.to_string())?;
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let payload = read_frame(stream, 64).await?;
    let resp = ConnectResponse::decode_payload(Bytes::from(payload)).map_err(|e| e.to_string())?;
    if resp.timeout <= 0 {
        return Err("session expired".into());
    }
    Ok(resp)
}

/// One reconnect of `session` to `addr` over TLS with `connector` (TCP connect, TLS
/// handshake, ConnectRequest/Response): (TLS connected, session answered, resumed TLS?).
pub(crate) async fn tls_reconnect_time(
    connector: &TlsConnector,
    addr: SocketAddr,
    session: &RawSession,
    timeout_ms: i32,
) -> Result<(Duration, Duration, bool), String> {
    let t0 = Instant::now();
    let deadline = Duration::from_secs(10);
    let mut stream = connector
        .connect_tls(&Target::from_addr(addr), deadline)
        .await
        .map_err(|e| e.to_string())?;
    let tls = t0.elapsed();
    let resumed =
        stream.get_ref().1.handshake_kind() == Some(zk_transport::rustls::HandshakeKind::Resumed);
    exchange(&mut stream, Some(session), timeout_ms).await?;
    let took = t0.elapsed();
    let _ = stream.shutdown().await;
    Ok((tls, took, resumed))
}

/// Reads one length-prefixed frame of at most `max` bytes.
async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S, max: usize) -> Result<Vec<u8>, String> {
    let len = stream.read_i32().await.map_err(|e| e.to_string())?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("bad length {len}"))?;
    let mut payload = vec![0; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| e.to_string())?;
    Ok(payload)
}

/// Creates a session on `addr` (the connection is closed; the session lives for `timeout_ms`).
pub(crate) async fn new_session(addr: SocketAddr, timeout_ms: i32) -> Result<RawSession, String> {
    let (resp, _stream) = handshake(addr, None, timeout_ms).await?;
    Ok(RawSession {
        id: resp.session_id,
        passwd: resp.passwd,
    })
}

/// Time of one reconnect of `session` to `addr`: TCP connect + ConnectRequest/Response.
pub(crate) async fn reconnect_time(
    addr: SocketAddr,
    session: &RawSession,
    timeout_ms: i32,
) -> Result<Duration, String> {
    let t0 = Instant::now();
    let (_resp, stream) = handshake(addr, Some(session), timeout_ms).await?;
    let took = t0.elapsed();
    drop(stream);
    Ok(took)
}

/// One `getData` of `path` on an established raw connection (xid 1), waiting for its reply.
pub(crate) async fn get_data(stream: &mut TcpStream, path: &str) -> Result<(), String> {
    let mut out = BytesMut::with_capacity(64);
    let header = RequestHeader {
        xid: 1,
        op: OpCode::GetData,
    };
    let body = GetDataRequest {
        path: path.to_owned(),
        watch: false,
    };
    write_request(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &header, &body)
        .map_err(|e| e.to_string())?;
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let payload = read_frame(stream, 4096).await?;
    // ReplyHeader: xid (4), zxid (8), err (4).
    match payload.get(12..16) {
        Some([0, 0, 0, 0]) => Ok(()),
        other => Err(format!("getData failed: {other:?}")),
    }
}

/// What the bare protocol needs to fail over once: from the moment `stream` reports the
/// server gone (EOF or reset), a handshake of `session` on `next`, then one `getData`.
/// Returns (EOF seen, handshake answered, read answered).
pub(crate) async fn fail_over_once(
    mut stream: TcpStream,
    session: &RawSession,
    next: SocketAddr,
    timeout_ms: i32,
) -> Result<(Instant, Instant, Instant), String> {
    let mut buf = [0_u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let eof = Instant::now();
    let (_resp, mut fresh) = handshake(next, Some(session), timeout_ms).await?;
    let back = Instant::now();
    get_data(&mut fresh, "/probe").await?;
    Ok((eof, back, Instant::now()))
}
