//! The engine's public vocabulary: states, events, requests, replies and errors.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::{ErrorCode, OpCode};

/// Identifies one transport connection (or connection attempt) the core asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    /// The raw number, for logs.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Identifies one submitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The raw number, for logs.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Who decided that the session expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExpiredBy {
    /// A server answered the session's reconnect with a zero timeout (expired, or a wrong
    /// password: the two look the same). Authoritative.
    Server,
    /// No server could be reached for longer than the session can live
    /// (`T × local_expiry` after the last contact).
    Local,
}

/// What a user can observe of the session.
///
/// ```text
///             connect ok                 connection lost (session alive)
/// Connecting ───────────> Connected ─────────────────────────────> Disconnected
///     ^                    │    ^                                     │
///     │                    │    └──────────── re-established ─────────┘
///     │  (read-only ok)    v                                          │
///     └────────── ConnectedReadOnly <──── r/w server found: move ─────┘
///
///    terminal:  Expired { by_server | local }   AuthFailed   Closed   TakenOver
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Intermediate: looking for a server to create the session on.
    Connecting,
    /// Intermediate: connected to a read-write server.
    Connected,
    /// Intermediate: connected to a read-only server (writes fail with `NotReadOnly`).
    ConnectedReadOnly,
    /// Intermediate: the connection was lost; the session is alive and being re-established.
    Disconnected,
    /// Terminal: the session is gone.
    Expired {
        /// Who said so.
        by: ExpiredBy,
    },
    /// Terminal: the server rejected the credentials in the re-registration preamble.
    AuthFailed,
    /// Terminal: closed by the user.
    Closed,
    /// Terminal: another client keeps taking this session over (two processes resumed
    /// the same saved session); reconnecting would only ping-pong.
    TakenOver,
}

impl SessionState {
    /// Whether no further transition can happen.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Expired { .. } | Self::AuthFailed | Self::Closed | Self::TakenOver
        )
    }

    /// Whether requests can be answered right now.
    #[must_use]
    pub const fn is_connected(self) -> bool {
        matches!(self, Self::Connected | Self::ConnectedReadOnly)
    }

    /// The error every request gets once the session is in this terminal state.
    #[must_use]
    pub const fn terminal_error(self) -> Option<RequestError> {
        match self {
            Self::Expired { by } => Some(RequestError::SessionExpired { by }),
            Self::AuthFailed => Some(RequestError::AuthFailed),
            Self::Closed => Some(RequestError::Closed),
            Self::TakenOver => Some(RequestError::TakenOver),
            Self::Connecting | Self::Connected | Self::ConnectedReadOnly | Self::Disconnected => {
                None
            }
        }
    }
}

/// A state transition, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The new state.
    pub state: SessionState,
    /// The session id (0 before the first handshake).
    pub session_id: i64,
    /// The server the session is on (for connected states) or was last on.
    pub server: Option<SocketAddr>,
    /// When it happened.
    pub at: Instant,
}

/// What the core tells the application layer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The session changed state.
    State(StateChange),
    /// A watch notification (xid −1); `body` is the encoded `WatcherEvent`.
    Notification {
        /// The encoded `WatcherEvent` record.
        body: Bytes,
    },
    /// A request finished (exactly once per submitted request).
    Completed {
        /// Which request.
        id: RequestId,
        /// Its outcome.
        result: Result<Reply, RequestError>,
    },
    /// The reply to a preamble packet (auth, SetWatches) sent after a handshake.
    PreambleReply {
        /// The packet's xid.
        xid: i32,
        /// The server's last zxid when it answered.
        zxid: i64,
        /// The server's error code.
        err: ErrorCode,
        /// The reply body.
        body: Bytes,
        /// The session's last seen zxid when the preamble was built.
        relative_zxid: i64,
    },
}

/// Whether a request may be sent again after a connection loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Idempotence {
    /// A read: re-sent on the next connection if its answer was lost.
    Resend,
    /// A write, or a read the caller does not want repeated: fails with
    /// [`RequestError::ConnectionLoss`] if its answer was lost.
    FailOnLoss,
}

/// A request for the core: an opcode and its encoded body (the header is the core's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The operation.
    pub op: OpCode,
    /// The encoded request record (without header or length prefix).
    pub body: Bytes,
    /// What to do if the answer is lost with the connection.
    pub idempotence: Idempotence,
    /// Fail with [`RequestError::Timeout`] if not answered by then. Without one, a request
    /// waits while the session is alive and fails when it ends.
    pub deadline: Option<Instant>,
}

impl Request {
    /// A read: re-sent after a reconnect if its answer was lost.
    #[must_use]
    pub const fn read(op: OpCode, body: Bytes) -> Self {
        Self {
            op,
            body,
            idempotence: Idempotence::Resend,
            deadline: None,
        }
    }

    /// A write: fails with `ConnectionLoss` (outcome unknown) if its answer was lost.
    #[must_use]
    pub const fn write(op: OpCode, body: Bytes) -> Self {
        Self {
            op,
            body,
            idempotence: Idempotence::FailOnLoss,
            deadline: None,
        }
    }

    /// Sets a deadline.
    #[must_use]
    pub const fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// A server's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The zxid in the reply header.
    pub zxid: i64,
    /// The server's error code (`Ok` on success); the body is empty for errors.
    pub err: ErrorCode,
    /// The encoded response record.
    pub body: Bytes,
}

/// Why a request did not get a server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The connection was lost while the request was in flight. For a write the outcome is
    /// unknown: it may or may not have been applied.
    #[error("connection lost while the request was in flight (outcome unknown: {outcome_unknown})")]
    ConnectionLoss {
        /// Whether the request may have been applied.
        outcome_unknown: bool,
    },
    /// The request's deadline passed.
    #[error("request deadline passed")]
    Timeout,
    /// The session expired.
    #[error("session expired ({by:?})")]
    SessionExpired {
        /// Who said so.
        by: ExpiredBy,
    },
    /// The session was closed.
    #[error("session closed")]
    Closed,
    /// Another client holds this session.
    #[error("session taken over by another client")]
    TakenOver,
    /// The server rejected our credentials.
    #[error("authentication failed")]
    AuthFailed,
    /// The encoded request exceeds the server's `jute.maxbuffer`; nothing was sent.
    #[error("request of {len} bytes exceeds the limit of {max}")]
    RequestTooLarge {
        /// Payload size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The reply exceeded the inbound limit and was discarded; the connection was kept.
    #[error("reply of {len} bytes exceeds the inbound limit of {max}")]
    ResponseTooLarge {
        /// Frame size announced by the server.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl RequestError {
    /// Whether trying again later can succeed on the same session.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::ConnectionLoss { .. } | Self::Timeout)
    }
}

/// Counters a user can read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Successful handshakes that re-established an existing session.
    pub reconnects: u64,
    /// Re-establishments on a different server than the one lost.
    pub failovers: u64,
    /// Connection attempts started.
    pub attempts: u64,
    /// Attempts that failed.
    pub failed_attempts: u64,
    /// From losing the connection to having the session back, for the last reconnect.
    pub last_pause: Option<Duration>,
    /// The longest such pause so far.
    pub max_pause: Option<Duration>,
    /// Times the failure detector (not the transport) declared a connection dead.
    pub detector_trips: u64,
    /// Requests re-sent after a reconnect.
    pub resent: u64,
    /// Handshakes given more time than the per-attempt cap because other sessions of the
    /// process were completing handshakes on the same server (a reconnect storm).
    pub extended_attempts: u64,
    /// Probes planned while servers were electing a leader (accepting and closing
    /// connections): each is one connection attempt after a wait.
    pub election_probes: u64,
    /// Elections the session waited out and learned the length of.
    pub elections_waited: u64,
    /// Host-list changes applied ([`Session::update_hosts`](crate::Session::update_hosts)).
    pub host_updates: u64,
    /// Moves to another server made because the host list changed (rebalancing).
    pub rebalances: u64,
}
