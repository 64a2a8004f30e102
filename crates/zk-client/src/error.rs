//! The client's single error type.

use std::time::Duration;

use zk_proto::{DecodeError, ErrorCode, OpCode};
use zk_session::{ExpiredBy, RequestError};

use crate::ops::OpResult;

/// Everything an operation can fail with: every server error code, and the client's own
/// failures.
///
/// `Clone`, so one failure can be handed to many waiters. Match on the variants; the
/// helpers [`Error::is_retryable`], [`Error::is_terminal`] and [`Error::code`] cover the
/// usual decisions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- Server error codes (`KeeperException.Code`) -----
    /// The node does not exist (`NONODE`, -101).
    #[error("no node")]
    NoNode,
    /// The node already exists (`NODEEXISTS`, -110).
    #[error("node already exists")]
    NodeExists,
    /// The expected version did not match (`BADVERSION`, -103).
    #[error("bad version")]
    BadVersion,
    /// The node has children (`NOTEMPTY`, -111).
    #[error("node has children")]
    NotEmpty,
    /// Not authorised for this node (`NOAUTH`, -102).
    #[error("not authorised")]
    NoAuth,
    /// The ACL is invalid, e.g. empty or `auth` without credentials (`INVALIDACL`, -114).
    #[error("invalid ACL")]
    InvalidAcl,
    /// Ephemeral nodes may not have children (`NOCHILDRENFOREPHEMERALS`, -108).
    #[error("ephemeral nodes may not have children")]
    NoChildrenForEphemerals,
    /// A write, `sync` or `check` was sent to a read-only server (`NOTREADONLY`, -119).
    #[error("the server is read-only")]
    NotReadOnly,
    /// The server does not implement this operation (`UNIMPLEMENTED`, -6); a 3.8 server
    /// closes the connection afterwards.
    #[error("operation not implemented by the server")]
    Unimplemented,
    /// Invalid arguments (`BADARGUMENTS`, -8), e.g. a TTL out of range.
    #[error("bad arguments")]
    BadArguments,
    /// The server could not decode the request (`MARSHALLINGERROR`, -5).
    #[error("the server could not decode the request")]
    MarshallingError,
    /// A system error on the server (`SYSTEMERROR`, -1).
    #[error("server system error")]
    SystemError,
    /// Runtime inconsistency (`RUNTIMEINCONSISTENCY`, -2); in a failed multi, the result of
    /// the operations after the failing one.
    #[error("runtime inconsistency")]
    RuntimeInconsistency,
    /// Data inconsistency (`DATAINCONSISTENCY`, -3).
    #[error("data inconsistency")]
    DataInconsistency,
    /// An unknown session (`UNKNOWNSESSION`, -12).
    #[error("unknown session")]
    UnknownSession,
    /// The new configuration has no quorum (`NEWCONFIGNOQUORUM`, -13).
    #[error("no quorum for the new configuration")]
    NewConfigNoQuorum,
    /// Another reconfiguration is in progress (`RECONFIGINPROGRESS`, -14).
    #[error("another reconfiguration is in progress")]
    ReconfigInProgress,
    /// Reconfiguration is disabled on the server (`RECONFIGDISABLED`, -123).
    #[error("reconfiguration is disabled")]
    ReconfigDisabled,
    /// Generic API error (`APIERROR`, -100).
    #[error("API error")]
    ApiError,
    /// Invalid callback (`INVALIDCALLBACK`, -113).
    #[error("invalid callback")]
    InvalidCallback,
    /// The session moved to another server (`SESSIONMOVED`, -118).
    #[error("session moved")]
    SessionMoved,
    /// An ephemeral node on a local session (`EPHEMERALONLOCALSESSION`, -120).
    #[error("ephemeral node on a local session")]
    EphemeralOnLocalSession,
    /// No such watcher (`NOWATCHER`, -121): from `remove_watches`/`check_watches`.
    #[error("no such watcher")]
    NoWatcher,
    /// The server throttled the request (`THROTTLEDOP`, -127).
    #[error("throttled by the server")]
    Throttled,
    /// A quota was exceeded (`QUOTAEXCEEDED`, -125).
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The session was closed because SASL authentication is required (-124).
    #[error("session closed: SASL authentication required")]
    SessionClosedRequireSaslAuth,
    /// Any other error code a server sent (the code is preserved).
    #[error("server error {code}")]
    Server {
        /// The code as received.
        code: ErrorCode,
    },

    // ----- Client errors -----
    /// The connection was lost while the request was in flight. For writes the outcome is
    /// unknown: the write may or may not have been applied.
    #[error("connection lost (outcome unknown: {outcome_unknown})")]
    ConnectionLoss {
        /// Whether the request may have been applied.
        outcome_unknown: bool,
    },
    /// The session expired; every later call fails the same way.
    #[error("session expired ({by:?})")]
    SessionExpired {
        /// Who decided: the server (authoritative) or the client (no server reachable for
        /// longer than the session can live).
        by: ExpiredBy,
    },
    /// The operation's deadline passed (see [`ClientBuilder::operation_timeout`](crate::ClientBuilder::operation_timeout)).
    #[error("operation timed out")]
    Timeout,
    /// No session could be established within the initial connect timeout.
    #[error("no session established within {after:?}{}", last_error.as_ref().map(|(addr, e)| format!(" (last error, {addr}: {e})")).unwrap_or_default())]
    ConnectTimeout {
        /// The configured initial connect timeout.
        after: Duration,
        /// The last transport failure (refused, timed out, a TLS alert or certificate
        /// problem naming its cause), if any attempt failed that way.
        last_error: Option<(std::net::SocketAddr, zk_transport::ConnectError)>,
    },
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// The path is not a valid ZooKeeper path; nothing was sent.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: zk_connstr::PathError,
    },
    /// The connection string could not be parsed.
    #[error("invalid connection string: {0}")]
    InvalidConnectString(#[from] zk_connstr::ParseError),
    /// An argument was rejected before anything was sent.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why.
        reason: &'static str,
    },
    /// The encoded request exceeds the outbound limit (`jute.maxbuffer`); nothing was sent.
    #[error("request of {len} bytes exceeds the limit of {max}")]
    RequestTooLarge {
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The reply exceeded the inbound limit and was discarded; the session is unaffected.
    #[error("reply of {len} bytes exceeds the limit of {max}")]
    ResponseTooLarge {
        /// Announced size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Another process keeps taking this session over (both resumed the same saved session).
    #[error("session taken over by another client")]
    TakenOver,
    /// The server rejected the session's credentials (terminal), or an `add_auth` failed.
    #[error("authentication failed")]
    AuthFailed,
    /// The server's reply could not be decoded.
    #[error("malformed reply to {op:?}: {source}")]
    Protocol {
        /// The operation whose reply was malformed.
        op: OpCode,
        /// What was wrong.
        source: DecodeError,
    },
    /// A multi failed: no operation was applied. `results` has one entry per operation.
    #[error("multi failed at operation {index}: {error}")]
    MultiFailed {
        /// Index of the first failing operation.
        index: usize,
        /// Its error.
        error: Box<Self>,
        /// Per-operation results (errors; operations before the failing one report
        /// [`OpResult::RolledBack`]).
        results: Vec<OpResult>,
    },
}

impl Error {
    /// Whether the same call may succeed if tried again on the same session (after the
    /// connection is back): connection loss, timeouts and throttling.
    ///
    /// For a write that failed with `ConnectionLoss { outcome_unknown: true }` a retry may
    /// apply it twice; check before retrying non-idempotent writes.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::ConnectionLoss { .. } | Self::Timeout | Self::Throttled | Self::SessionMoved
        )
    }

    /// Whether the session is over: every later call fails too (expired, closed, taken
    /// over, authentication failed).
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::SessionExpired { .. } | Self::Closed | Self::TakenOver | Self::AuthFailed
        )
    }

    /// The server error code this error stands for, if it is one.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Self::NoNode => ErrorCode::NoNode,
            Self::NodeExists => ErrorCode::NodeExists,
            Self::BadVersion => ErrorCode::BadVersion,
            Self::NotEmpty => ErrorCode::NotEmpty,
            Self::NoAuth => ErrorCode::NoAuth,
            Self::InvalidAcl => ErrorCode::InvalidAcl,
            Self::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            Self::NotReadOnly => ErrorCode::NotReadOnly,
            Self::Unimplemented => ErrorCode::Unimplemented,
            Self::BadArguments => ErrorCode::BadArguments,
            Self::MarshallingError => ErrorCode::MarshallingError,
            Self::SystemError => ErrorCode::SystemError,
            Self::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
            Self::DataInconsistency => ErrorCode::DataInconsistency,
            Self::UnknownSession => ErrorCode::UnknownSession,
            Self::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Self::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Self::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Self::ApiError => ErrorCode::ApiError,
            Self::InvalidCallback => ErrorCode::InvalidCallback,
            Self::SessionMoved => ErrorCode::SessionMoved,
            Self::EphemeralOnLocalSession => ErrorCode::EphemeralOnLocalSession,
            Self::NoWatcher => ErrorCode::NoWatcher,
            Self::Throttled => ErrorCode::Throttled,
            Self::QuotaExceeded => ErrorCode::QuotaExceeded,
            Self::SessionClosedRequireSaslAuth => ErrorCode::SessionClosedRequireSaslAuth,
            Self::Server { code } => *code,
            Self::SessionExpired { .. } => ErrorCode::SessionExpired,
            Self::AuthFailed => ErrorCode::AuthFailed,
            Self::ConnectionLoss { .. } => ErrorCode::ConnectionLoss,
            Self::Timeout => ErrorCode::OperationTimeout,
            Self::MultiFailed { error, .. } => return error.code(),
            _ => return None,
        })
    }

    /// The error for a server code (`None` for [`ErrorCode::Ok`]).
    #[must_use]
    pub fn from_code(code: ErrorCode) -> Option<Self> {
        Some(match code {
            ErrorCode::Ok => return None,
            ErrorCode::NoNode => Self::NoNode,
            ErrorCode::NodeExists => Self::NodeExists,
            ErrorCode::BadVersion => Self::BadVersion,
            ErrorCode::NotEmpty => Self::NotEmpty,
            ErrorCode::NoAuth => Self::NoAuth,
            ErrorCode::InvalidAcl => Self::InvalidAcl,
            ErrorCode::NoChildrenForEphemerals => Self::NoChildrenForEphemerals,
            ErrorCode::NotReadOnly => Self::NotReadOnly,
            ErrorCode::Unimplemented => Self::Unimplemented,
            ErrorCode::BadArguments => Self::BadArguments,
            ErrorCode::MarshallingError => Self::MarshallingError,
            ErrorCode::SystemError => Self::SystemError,
            ErrorCode::RuntimeInconsistency => Self::RuntimeInconsistency,
            ErrorCode::DataInconsistency => Self::DataInconsistency,
            ErrorCode::UnknownSession => Self::UnknownSession,
            ErrorCode::NewConfigNoQuorum => Self::NewConfigNoQuorum,
            ErrorCode::ReconfigInProgress => Self::ReconfigInProgress,
            ErrorCode::ReconfigDisabled => Self::ReconfigDisabled,
            ErrorCode::ApiError => Self::ApiError,
            ErrorCode::InvalidCallback => Self::InvalidCallback,
            ErrorCode::SessionMoved => Self::SessionMoved,
            ErrorCode::EphemeralOnLocalSession => Self::EphemeralOnLocalSession,
            ErrorCode::NoWatcher => Self::NoWatcher,
            ErrorCode::Throttled => Self::Throttled,
            ErrorCode::QuotaExceeded => Self::QuotaExceeded,
            ErrorCode::SessionClosedRequireSaslAuth => Self::SessionClosedRequireSaslAuth,
            ErrorCode::SessionExpired => Self::SessionExpired {
                by: ExpiredBy::Server,
            },
            ErrorCode::AuthFailed => Self::AuthFailed,
            ErrorCode::ConnectionLoss => Self::ConnectionLoss {
                outcome_unknown: true,
            },
            ErrorCode::OperationTimeout | ErrorCode::RequestTimeout => Self::Timeout,
            other => Self::Server { code: other },
        })
    }
}

impl From<RequestError> for Error {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::ConnectionLoss { outcome_unknown } => {
                Self::ConnectionLoss { outcome_unknown }
            }
            RequestError::Timeout => Self::Timeout,
            RequestError::SessionExpired { by } => Self::SessionExpired { by },
            RequestError::TakenOver => Self::TakenOver,
            RequestError::AuthFailed => Self::AuthFailed,
            RequestError::RequestTooLarge { len, max } => Self::RequestTooLarge { len, max },
            RequestError::ResponseTooLarge { len, max } => Self::ResponseTooLarge { len, max },
            // `Closed`, and any outcome a newer engine adds: the request got no answer.
            _ => Self::Closed,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips() {
        for raw in -200..=0 {
            let code = ErrorCode::from_i32(raw);
            match Error::from_code(code) {
                None => assert_eq!(code, ErrorCode::Ok),
                Some(err) => {
                    let back = err.code().unwrap();
                    // Client-side aliases collapse onto one code.
                    if code != ErrorCode::RequestTimeout {
                        assert_eq!(back, code, "{err:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn helpers() {
        assert!(
            Error::ConnectionLoss {
                outcome_unknown: true
            }
            .is_retryable()
        );
        assert!(!Error::NoNode.is_retryable());
        assert!(Error::Closed.is_terminal());
        assert!(
            Error::SessionExpired {
                by: ExpiredBy::Server
            }
            .is_terminal()
        );
        assert!(!Error::Timeout.is_terminal());
        assert_eq!(
            Error::from(RequestError::Timeout),
            Error::Timeout,
            "session errors map one to one"
        );
    }
}
