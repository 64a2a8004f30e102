//! Numeric codes of the protocol: operation codes, error codes, watch event types and states,
//! create modes, permission bits and the special xids.
//!
//! Every enum here keeps codes it does not know in an `Unknown(i32)` variant, so decoding never
//! fails on a code from a newer server and `as_i32` always returns the value that was on the
//! wire. Build values with `From<i32>`: it maps every known code to its named variant, so
//! `Unknown` only ever holds unassigned codes.

use bytes::{BufMut, Bytes};

use crate::{DecodeError, Record};

/// Defines an `i32`-coded enum with an `Unknown(i32)` catch-all, `From<i32>`, `as_i32` and a
/// [`Record`] impl.
macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )*
            /// A code this crate does not know; the value is preserved.
            Unknown(i32),
        }

        impl $name {
            /// The code as sent on the wire.
            #[must_use]
            pub const fn as_i32(self) -> i32 {
                match self {
                    $( Self::$variant => $value, )*
                    Self::Unknown(code) => code,
                }
            }

            /// Maps a wire code to its variant (`Unknown` for unassigned codes).
            #[must_use]
            pub const fn from_i32(code: i32) -> Self {
                match code {
                    $( $value => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<i32> for $name {
            fn from(code: i32) -> Self {
                Self::from_i32(code)
            }
        }

        impl From<$name> for i32 {
            fn from(code: $name) -> Self {
                code.as_i32()
            }
        }

        impl Record for $name {
            const MIN_ENCODED_LEN: usize = 4;

            fn encode<B: BufMut>(&self, buf: &mut B) {
                buf.put_i32(self.as_i32());
            }

            fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
                i32::decode(buf).map(Self::from_i32)
            }

            fn encoded_len(&self) -> usize {
                4
            }
        }
    };
}

int_enum! {
    /// The operation code of a request (`ZooDefs.OpCode`).
    pub enum OpCode {
        /// `notification` (0): never sent by a client; notifications are recognised by xid -1.
        #[default]
        Notification = 0,
        /// `create` (1): [`CreateRequest`](crate::CreateRequest) → [`CreateResponse`](crate::CreateResponse).
        Create = 1,
        /// `delete` (2): [`DeleteRequest`](crate::DeleteRequest) → empty body.
        Delete = 2,
        /// `exists` (3): [`ExistsRequest`](crate::ExistsRequest) → [`ExistsResponse`](crate::ExistsResponse).
        Exists = 3,
        /// `getData` (4): [`GetDataRequest`](crate::GetDataRequest) → [`GetDataResponse`](crate::GetDataResponse).
        /// Also used for getConfig on [`CONFIG_NODE`](crate::CONFIG_NODE).
        GetData = 4,
        /// `setData` (5): [`SetDataRequest`](crate::SetDataRequest) → [`SetDataResponse`](crate::SetDataResponse).
        SetData = 5,
        /// `getACL` (6): [`GetAclRequest`](crate::GetAclRequest) → [`GetAclResponse`](crate::GetAclResponse).
        GetAcl = 6,
        /// `setACL` (7): [`SetAclRequest`](crate::SetAclRequest) → [`SetAclResponse`](crate::SetAclResponse).
        SetAcl = 7,
        /// `getChildren` (8): [`GetChildrenRequest`](crate::GetChildrenRequest) → [`GetChildrenResponse`](crate::GetChildrenResponse).
        GetChildren = 8,
        /// `sync` (9): [`SyncRequest`](crate::SyncRequest) → [`SyncResponse`](crate::SyncResponse).
        Sync = 9,
        /// `ping` (11): empty request and reply, xid [`xid::PING`](crate::xid::PING).
        Ping = 11,
        /// `getChildren2` (12): [`GetChildren2Request`](crate::GetChildren2Request) → [`GetChildren2Response`](crate::GetChildren2Response).
        GetChildren2 = 12,
        /// `check` (13): [`CheckVersionRequest`](crate::CheckVersionRequest), only inside a multi.
        Check = 13,
        /// `multi` (14): [`MultiRequest`](crate::MultiRequest) → [`MultiResponse`](crate::MultiResponse).
        Multi = 14,
        /// `create2` (15): [`CreateRequest`](crate::CreateRequest) → [`Create2Response`](crate::Create2Response).
        Create2 = 15,
        /// `reconfig` (16): [`ReconfigRequest`](crate::ReconfigRequest) → [`GetDataResponse`](crate::GetDataResponse).
        Reconfig = 16,
        /// `checkWatches` (17): [`CheckWatchesRequest`](crate::CheckWatchesRequest) → empty body.
        CheckWatches = 17,
        /// `removeWatches` (18): [`RemoveWatchesRequest`](crate::RemoveWatchesRequest) → empty body.
        RemoveWatches = 18,
        /// `createContainer` (19): [`CreateRequest`](crate::CreateRequest) → [`Create2Response`](crate::Create2Response).
        CreateContainer = 19,
        /// `deleteContainer` (20): server-internal.
        DeleteContainer = 20,
        /// `createTTL` (21): [`CreateTtlRequest`](crate::CreateTtlRequest) → [`Create2Response`](crate::Create2Response).
        CreateTtl = 21,
        /// `multiRead` (22): [`MultiRequest`](crate::MultiRequest) → [`MultiResponse`](crate::MultiResponse).
        MultiRead = 22,
        /// `auth` (100): [`AuthPacket`](crate::AuthPacket), xid [`xid::AUTH`](crate::xid::AUTH).
        Auth = 100,
        /// `setWatches` (101): [`SetWatches`](crate::SetWatches), xid [`xid::SET_WATCHES`](crate::xid::SET_WATCHES).
        SetWatches = 101,
        /// `sasl` (102): [`GetSaslRequest`](crate::GetSaslRequest) → [`SetSaslResponse`](crate::SetSaslResponse).
        Sasl = 102,
        /// `getEphemerals` (103): [`GetEphemeralsRequest`](crate::GetEphemeralsRequest) → [`GetEphemeralsResponse`](crate::GetEphemeralsResponse).
        GetEphemerals = 103,
        /// `getAllChildrenNumber` (104): [`GetAllChildrenNumberRequest`](crate::GetAllChildrenNumberRequest) → [`GetAllChildrenNumberResponse`](crate::GetAllChildrenNumberResponse).
        GetAllChildrenNumber = 104,
        /// `setWatches2` (105): [`SetWatches2`](crate::SetWatches2), xid [`xid::SET_WATCHES`](crate::xid::SET_WATCHES).
        SetWatches2 = 105,
        /// `addWatch` (106): [`AddWatchRequest`](crate::AddWatchRequest) → [`ErrorResponse`](crate::ErrorResponse).
        AddWatch = 106,
        /// `whoAmI` (107): empty request → [`WhoAmIResponse`](crate::WhoAmIResponse).
        WhoAmI = 107,
        /// `createSession` (-10): server-internal (the handshake is a [`ConnectRequest`](crate::ConnectRequest)).
        CreateSession = -10,
        /// `closeSession` (-11): empty request and reply; the server closes the connection after replying.
        CloseSession = -11,
        /// `error` (-1): the type of an error result inside a multi response.
        Error = -1,
    }
}

int_enum! {
    /// An error code from a reply header or a multi result (`KeeperException.Code`, 3.5–3.9).
    pub enum ErrorCode {
        /// Success.
        #[default]
        Ok = 0,
        /// A system or server-side error (also the base of the system error range).
        SystemError = -1,
        /// A runtime inconsistency; inside a failed multi, the result of ops that were rolled back.
        RuntimeInconsistency = -2,
        /// A data inconsistency was found.
        DataInconsistency = -3,
        /// The connection to the server was lost (client-side code).
        ConnectionLoss = -4,
        /// The server could not (un)marshal the request; the connection stays open.
        MarshallingError = -5,
        /// The operation is not implemented; the server closes the connection afterwards.
        Unimplemented = -6,
        /// The operation timed out (client-side code).
        OperationTimeout = -7,
        /// Invalid arguments.
        BadArguments = -8,
        /// Unknown session (internal).
        UnknownSession = -12,
        /// A reconfig could not reach a quorum of the new configuration.
        NewConfigNoQuorum = -13,
        /// Another reconfig is in progress.
        ReconfigInProgress = -14,
        /// API error (also the base of the API error range).
        ApiError = -100,
        /// The node does not exist.
        NoNode = -101,
        /// Not authorised for the node.
        NoAuth = -102,
        /// The version did not match.
        BadVersion = -103,
        /// Ephemeral nodes may not have children.
        NoChildrenForEphemerals = -108,
        /// The node already exists.
        NodeExists = -110,
        /// The node has children.
        NotEmpty = -111,
        /// The session has expired.
        SessionExpired = -112,
        /// Invalid callback.
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// The session moved to another server (3.8 closes the connection instead of sending it).
        SessionMoved = -118,
        /// A write, sync or check was sent to a read-only server.
        NotReadOnly = -119,
        /// An ephemeral node was created on a local session.
        EphemeralOnLocalSession = -120,
        /// The watcher to remove does not exist.
        NoWatcher = -121,
        /// The request timed out (client-side code).
        RequestTimeout = -122,
        /// Reconfig is disabled on the server.
        ReconfigDisabled = -123,
        /// The session was closed because the client failed SASL authentication.
        SessionClosedRequireSaslAuth = -124,
        /// A hard quota was exceeded.
        QuotaExceeded = -125,
        /// The server throttled the operation.
        Throttled = -127,
    }
}

impl ErrorCode {
    /// Whether this is [`ErrorCode::Ok`].
    #[must_use]
    pub const fn is_ok(self) -> bool {
        matches!(self, Self::Ok)
    }

    /// A short human-readable description.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::SystemError => "system error",
            Self::RuntimeInconsistency => "runtime inconsistency",
            Self::DataInconsistency => "data inconsistency",
            Self::ConnectionLoss => "connection loss",
            Self::MarshallingError => "marshalling error",
            Self::Unimplemented => "unimplemented operation",
            Self::OperationTimeout => "operation timeout",
            Self::BadArguments => "bad arguments",
            Self::UnknownSession => "unknown session",
            Self::NewConfigNoQuorum => "no quorum for the new configuration",
            Self::ReconfigInProgress => "another reconfiguration is in progress",
            Self::ApiError => "API error",
            Self::NoNode => "no node",
            Self::NoAuth => "not authenticated",
            Self::BadVersion => "bad version",
            Self::NoChildrenForEphemerals => "ephemeral nodes may not have children",
            Self::NodeExists => "node exists",
            Self::NotEmpty => "node not empty",
            Self::SessionExpired => "session expired",
            Self::InvalidCallback => "invalid callback",
            Self::InvalidAcl => "invalid ACL",
            Self::AuthFailed => "authentication failed",
            Self::SessionMoved => "session moved to another server",
            Self::NotReadOnly => "not a read-only call (server is read-only)",
            Self::EphemeralOnLocalSession => "ephemeral node on a local session",
            Self::NoWatcher => "no such watcher",
            Self::RequestTimeout => "request timeout",
            Self::ReconfigDisabled => "reconfiguration is disabled",
            Self::SessionClosedRequireSaslAuth => {
                "session closed because the client failed to authenticate"
            }
            Self::QuotaExceeded => "quota exceeded",
            Self::Throttled => "operation throttled due to high load",
            Self::Unknown(_) => "unknown error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message(), self.as_i32())
    }
}

int_enum! {
    /// The type of a [`WatcherEvent`](crate::WatcherEvent) (`Watcher.Event.EventType`).
    pub enum EventType {
        /// No node event: a connection-state change (-1).
        #[default]
        None = -1,
        /// The node was created (1).
        NodeCreated = 1,
        /// The node was deleted (2).
        NodeDeleted = 2,
        /// The node's data changed (3).
        NodeDataChanged = 3,
        /// The node's children changed (4).
        NodeChildrenChanged = 4,
        /// A data watch was removed (5).
        DataWatchRemoved = 5,
        /// A child watch was removed (6).
        ChildWatchRemoved = 6,
        /// A persistent watch was removed (7).
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// The connection state in a [`WatcherEvent`](crate::WatcherEvent) (`Watcher.Event.KeeperState`).
    ///
    /// Java's deprecated `Unknown` (-1) maps to `Unknown(-1)`.
    pub enum KeeperState {
        /// Disconnected (0).
        #[default]
        Disconnected = 0,
        /// Deprecated `NoSyncConnected` (1).
        NoSyncConnected = 1,
        /// Connected; the state every server notification carries (3).
        SyncConnected = 3,
        /// Authentication failed (4).
        AuthFailed = 4,
        /// Connected to a read-only server (5).
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded (6).
        SaslAuthenticated = 6,
        /// The session expired (-112).
        Expired = -112,
        /// The client was closed (7).
        Closed = 7,
    }
}

int_enum! {
    /// The kind of a node to create: the `flags` of a create request (`CreateMode`).
    pub enum CreateMode {
        /// Persistent (0).
        #[default]
        Persistent = 0,
        /// Ephemeral: deleted when the session ends (1).
        Ephemeral = 1,
        /// Persistent with a sequence suffix (2).
        PersistentSequential = 2,
        /// Ephemeral with a sequence suffix (3).
        EphemeralSequential = 3,
        /// Container: deleted once its last child goes (4); use [`OpCode::CreateContainer`].
        Container = 4,
        /// Persistent with a TTL (5); use [`OpCode::CreateTtl`].
        PersistentWithTtl = 5,
        /// Persistent, sequential, with a TTL (6); use [`OpCode::CreateTtl`].
        PersistentSequentialWithTtl = 6,
    }
}

int_enum! {
    /// The `mode` of an [`AddWatchRequest`](crate::AddWatchRequest) (`AddWatchMode`).
    pub enum AddWatchMode {
        /// A persistent watch on one node (0).
        #[default]
        Persistent = 0,
        /// A persistent watch on a node and all its descendants (1).
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// The `type` of a remove/check-watches request (`Watcher.WatcherType`).
    pub enum WatcherType {
        /// Child watches (1).
        Children = 1,
        /// Data watches (2).
        Data = 2,
        /// Any watch (3).
        #[default]
        Any = 3,
    }
}

/// Permission bits of an [`Acl`](crate::Acl) (`ZooDefs.Perms`).
pub mod perms {
    /// May read the node's data and list its children.
    pub const READ: i32 = 1;
    /// May set the node's data.
    pub const WRITE: i32 = 1 << 1;
    /// May create children.
    pub const CREATE: i32 = 1 << 2;
    /// May delete children.
    pub const DELETE: i32 = 1 << 3;
    /// May set the node's ACL.
    pub const ADMIN: i32 = 1 << 4;
    /// All of the above.
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// The special xids of the protocol, as used by the Java client (`ClientCnxn`).
///
/// Ordinary requests use positive, increasing xids. Replies to the requests below echo these
/// xids, so a session dispatches on them before matching a reply to a pending request.
/// SASL has **no** special xid: the Java client sends `sasl` (102) packets with ordinary xids.
pub mod xid {
    /// A watch notification from the server: a reply header with this xid (and zxid -1) followed
    /// by a [`WatcherEvent`](crate::WatcherEvent).
    pub const NOTIFICATION: i32 = -1;
    /// A ping ([`OpCode::Ping`](crate::OpCode::Ping)) and its reply.
    pub const PING: i32 = -2;
    /// An [`AuthPacket`](crate::AuthPacket) ([`OpCode::Auth`](crate::OpCode::Auth)) and its reply;
    /// an error reply with this xid means authentication failed.
    pub const AUTH: i32 = -4;
    /// [`SetWatches`](crate::SetWatches)/[`SetWatches2`](crate::SetWatches2) after a reconnect.
    /// The server echoes whatever xid is used; this is the one the Java client uses.
    pub const SET_WATCHES: i32 = -8;
}

/// The node whose data is the ensemble configuration (getConfig is a getData on it).
pub const CONFIG_NODE: &str = "/zookeeper/config";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknowns_are_preserved() {
        for code in -200..=200 {
            assert_eq!(OpCode::from(code).as_i32(), code);
            assert_eq!(ErrorCode::from(code).as_i32(), code);
            assert_eq!(EventType::from(code).as_i32(), code);
            assert_eq!(KeeperState::from(code).as_i32(), code);
        }
        assert_eq!(ErrorCode::from(-118), ErrorCode::SessionMoved);
        assert_eq!(ErrorCode::from(-119), ErrorCode::NotReadOnly);
        assert_eq!(ErrorCode::from(-126), ErrorCode::Unknown(-126));
        assert_eq!(OpCode::from(999), OpCode::Unknown(999));
        assert_eq!(OpCode::from(-11), OpCode::CloseSession);
    }

    #[test]
    fn display_has_message_and_code() {
        assert_eq!(ErrorCode::NoNode.to_string(), "no node (-101)");
        assert!(ErrorCode::Ok.is_ok());
        assert!(!ErrorCode::NoNode.is_ok());
    }

    #[test]
    fn perms_all() {
        assert_eq!(perms::ALL, 31);
    }
}
