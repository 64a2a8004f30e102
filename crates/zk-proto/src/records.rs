//! Layer 2: the protocol records, with the field orders of `zookeeper.jute` (3.5–3.9).

use bytes::{BufMut, Bytes};

use crate::jute::record;
use crate::{DecodeError, ErrorCode, EventType, KeeperState, OpCode, Record};

// ---------------------------------------------------------------------------------------------
// Data records (org.apache.zookeeper.data)
// ---------------------------------------------------------------------------------------------

record! {
    /// The metadata of a node (`data.Stat`).
    pub struct Stat {
        /// zxid of the transaction that created the node.
        pub czxid: i64,
        /// zxid of the transaction that last modified the node's data.
        pub mzxid: i64,
        /// Creation time, milliseconds since the epoch.
        pub ctime: i64,
        /// Last modification time, milliseconds since the epoch.
        pub mtime: i64,
        /// Number of changes to the node's data.
        pub version: i32,
        /// Number of changes to the node's children.
        pub cversion: i32,
        /// Number of changes to the node's ACL.
        pub aversion: i32,
        /// Session id of the owner if the node is ephemeral, 0 otherwise.
        pub ephemeral_owner: i64,
        /// Length of the node's data in bytes.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// zxid of the transaction that last changed the node's children.
        pub pzxid: i64,
    }
}

record! {
    /// An identity: an authentication scheme and an id within it (`data.Id`).
    pub struct Id {
        /// The scheme, e.g. `world`, `digest`, `ip`, `sasl`, `x509`.
        pub scheme: String,
        /// The id within the scheme, e.g. `anyone` for `world`.
        pub id: String,
    }
}

impl Id {
    /// Creates an id.
    #[must_use]
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

record! {
    /// An access-control entry: permissions granted to an identity (`data.ACL`).
    pub struct Acl {
        /// Permission bits, see [`perms`](crate::perms).
        pub perms: i32,
        /// Who the permissions are granted to.
        pub id: Id,
    }
}

impl Acl {
    /// `world:anyone` with all permissions (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
    #[must_use]
    pub fn open_unsafe() -> Vec<Self> {
        vec![Self {
            perms: crate::perms::ALL,
            id: Id::new("world", "anyone"),
        }]
    }

    /// `world:anyone` with read permission (`ZooDefs.Ids.READ_ACL_UNSAFE`).
    #[must_use]
    pub fn read_unsafe() -> Vec<Self> {
        vec![Self {
            perms: crate::perms::READ,
            id: Id::new("world", "anyone"),
        }]
    }

    /// All permissions for the creator's authenticated ids (`ZooDefs.Ids.CREATOR_ALL_ACL`).
    #[must_use]
    pub fn creator_all() -> Vec<Self> {
        vec![Self {
            perms: crate::perms::ALL,
            id: Id::new("auth", ""),
        }]
    }
}

record! {
    /// One authenticated identity of a session, as reported by whoAmI (`data.ClientInfo`).
    pub struct ClientInfo {
        /// The authentication scheme.
        pub auth_scheme: String,
        /// The authenticated user within the scheme.
        pub user: String,
    }
}

// ---------------------------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------------------------

/// The first frame a client sends (`proto.ConnectRequest` plus the trailing `readOnly` byte).
///
/// Always encodes the 45-byte form (with a 16-byte `passwd`). Decoding also accepts the 44-byte
/// form of pre-3.4 clients, without the `readOnly` byte (it then reads as `false`): the byte is
/// read if any input remains, so decode a ConnectRequest from its own frame payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ConnectRequest {
    /// Protocol version; always 0 (the server ignores it).
    pub protocol_version: i32,
    /// The highest zxid this client has seen; a server that is behind refuses the connection.
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds; the server clamps it.
    pub timeout: i32,
    /// 0 for a new session, otherwise the session to re-establish.
    pub session_id: i64,
    /// The session password: 16 zero bytes for a new session, else the one the server issued.
    pub passwd: Bytes,
    /// Whether the client accepts a read-only server.
    pub read_only: bool,
}

impl ConnectRequest {
    /// The length of the session password.
    pub const PASSWD_LEN: usize = 16;
}

impl Record for ConnectRequest {
    const MIN_ENCODED_LEN: usize = 28;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.protocol_version.encode(buf);
        self.last_zxid_seen.encode(buf);
        self.timeout.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        self.read_only.encode(buf);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: i32::decode(buf)?,
            last_zxid_seen: i64::decode(buf)?,
            timeout: i32::decode(buf)?,
            session_id: i64::decode(buf)?,
            passwd: Bytes::decode(buf)?,
            read_only: if buf.is_empty() {
                false
            } else {
                bool::decode(buf)?
            },
        })
    }

    fn encoded_len(&self) -> usize {
        4 + 8 + 4 + 8 + self.passwd.encoded_len() + 1
    }
}

/// The server's answer to a [`ConnectRequest`] (`proto.ConnectResponse` plus the optional
/// trailing `readOnly` byte).
///
/// Use [`ConnectResponse::decode_payload`] on a received frame: it is strict about the length.
/// ([`Record::decode`] reads the optional `readOnly` byte if any input remains.)
/// A response with `timeout <= 0` (in practice session id 0 and a zero password) means the
/// session is expired or the password was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ConnectResponse {
    /// Protocol version; 0.
    pub protocol_version: i32,
    /// The negotiated session timeout in milliseconds.
    pub timeout: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password (16 bytes).
    pub passwd: Bytes,
    /// Whether the server is read-only (`false` if the byte is absent).
    pub read_only: bool,
}

impl ConnectResponse {
    /// Payload length without the `readOnly` byte.
    pub const LEN_WITHOUT_READ_ONLY: usize = 36;
    /// Payload length with the `readOnly` byte.
    pub const LEN_WITH_READ_ONLY: usize = 37;

    /// Decodes a ConnectResponse frame payload, strictly.
    ///
    /// The payload must be exactly 36 bytes (no `readOnly` byte, which then reads as `false`) or
    /// 37 bytes, and the password must be 16 bytes. Anything else is an error: in particular the
    /// 16-byte ReplyHeader (err -119 NotReadOnly) that a 3.8 server without local sessions sends
    /// to a read-only client, which a lenient parser would misread as a session.
    ///
    /// # Errors
    ///
    /// [`DecodeError::BadConnectResponseLength`], [`DecodeError::BadPasswordLength`] or any
    /// field error.
    pub fn decode_payload(payload: Bytes) -> Result<Self, DecodeError> {
        let len = payload.len();
        if len != Self::LEN_WITHOUT_READ_ONLY && len != Self::LEN_WITH_READ_ONLY {
            return Err(DecodeError::BadConnectResponseLength(len));
        }
        let response: Self = crate::decode_exact(payload)?;
        if response.passwd.len() != ConnectRequest::PASSWD_LEN {
            return Err(DecodeError::BadPasswordLength(response.passwd.len()));
        }
        Ok(response)
    }

    /// Whether this response says the session is gone (expired, or wrong password):
    /// a non-positive negotiated timeout.
    #[must_use]
    pub const fn is_expired(&self) -> bool {
        self.timeout <= 0
    }
}

impl Record for ConnectResponse {
    const MIN_ENCODED_LEN: usize = 20;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.protocol_version.encode(buf);
        self.timeout.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        self.read_only.encode(buf);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: i32::decode(buf)?,
            timeout: i32::decode(buf)?,
            session_id: i64::decode(buf)?,
            passwd: Bytes::decode(buf)?,
            read_only: if buf.is_empty() {
                false
            } else {
                bool::decode(buf)?
            },
        })
    }

    fn encoded_len(&self) -> usize {
        4 + 4 + 8 + self.passwd.encoded_len() + 1
    }
}

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

record! {
    /// Precedes every request after the handshake (`proto.RequestHeader`).
    pub struct RequestHeader {
        /// Request id, echoed in the reply; see [`xid`](crate::xid) for the special ones.
        pub xid: i32,
        /// The operation.
        pub op: OpCode,
    }
}

impl RequestHeader {
    /// Encoded length: 8 bytes.
    pub const LEN: usize = 8;
}

record! {
    /// Precedes every reply and notification (`proto.ReplyHeader`).
    ///
    /// When `err` is not [`ErrorCode::Ok`] the reply has no body.
    pub struct ReplyHeader {
        /// The xid of the request this answers, or a special xid.
        pub xid: i32,
        /// The server's zxid: the transaction's for writes, the last processed one for reads and
        /// pings, -1 for notifications.
        pub zxid: i64,
        /// The result.
        pub err: ErrorCode,
    }
}

impl ReplyHeader {
    /// Encoded length: 16 bytes.
    pub const LEN: usize = 16;
}

record! {
    /// A watch notification, following a [`ReplyHeader`] with xid
    /// [`xid::NOTIFICATION`](crate::xid::NOTIFICATION) (`proto.WatcherEvent`).
    pub struct WatcherEvent {
        /// The event type, see [`EventType`] ([`WatcherEvent::typed_event_type`]).
        pub event_type: i32,
        /// The connection state, see [`KeeperState`] ([`WatcherEvent::keeper_state`]).
        pub state: i32,
        /// The node the event is about (server-side path, including any chroot).
        pub path: String,
    }
}

impl WatcherEvent {
    /// The event type as an enum.
    #[must_use]
    pub const fn typed_event_type(&self) -> EventType {
        EventType::from_i32(self.event_type)
    }

    /// The connection state as an enum.
    #[must_use]
    pub const fn keeper_state(&self) -> KeeperState {
        KeeperState::from_i32(self.state)
    }
}

/// An empty record: the body of ping, closeSession, whoAmI requests and of many replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Empty;

impl Record for Empty {
    fn encode<B: BufMut>(&self, _buf: &mut B) {}

    fn decode(_buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(Self)
    }

    fn encoded_len(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------

record! {
    /// create (1), create2 (15), createContainer (19) (`proto.CreateRequest`).
    pub struct CreateRequest {
        /// Path of the node to create.
        pub path: String,
        /// Initial data.
        pub data: Bytes,
        /// ACL of the new node; must not be empty.
        pub acl: Vec<Acl>,
        /// [`CreateMode`](crate::CreateMode) flags.
        pub flags: i32,
    }
}

record! {
    /// createTTL (21) (`proto.CreateTTLRequest`).
    pub struct CreateTtlRequest {
        /// Path of the node to create.
        pub path: String,
        /// Initial data.
        pub data: Bytes,
        /// ACL of the new node.
        pub acl: Vec<Acl>,
        /// [`CreateMode`](crate::CreateMode) flags (a TTL mode).
        pub flags: i32,
        /// Time to live in milliseconds.
        pub ttl: i64,
    }
}

record! {
    /// Reply to create (`proto.CreateResponse`).
    pub struct CreateResponse {
        /// The actual path (with the sequence suffix, if any).
        pub path: String,
    }
}

record! {
    /// Reply to create2, createContainer and createTTL (`proto.Create2Response`).
    pub struct Create2Response {
        /// The actual path.
        pub path: String,
        /// The new node's metadata.
        pub stat: Stat,
    }
}

record! {
    /// delete (2) (`proto.DeleteRequest`); the reply has no body.
    pub struct DeleteRequest {
        /// Path of the node to delete.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// exists (3) (`proto.ExistsRequest`).
    pub struct ExistsRequest {
        /// Path of the node.
        pub path: String,
        /// Whether to leave an exist/data watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to exists (`proto.ExistsResponse`); a missing node is err NoNode with no body.
    pub struct ExistsResponse {
        /// The node's metadata.
        pub stat: Stat,
    }
}

record! {
    /// getData (4) (`proto.GetDataRequest`); also getConfig, on [`CONFIG_NODE`](crate::CONFIG_NODE).
    pub struct GetDataRequest {
        /// Path of the node.
        pub path: String,
        /// Whether to leave a data watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to getData and reconfig (`proto.GetDataResponse`).
    pub struct GetDataResponse {
        /// The node's data; `None` if the node was created with null data. Zero-copy.
        pub data: Option<Bytes>,
        /// The node's metadata.
        pub stat: Stat,
    }
}

record! {
    /// setData (5) (`proto.SetDataRequest`).
    pub struct SetDataRequest {
        /// Path of the node.
        pub path: String,
        /// New data.
        pub data: Bytes,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// Reply to setData (`proto.SetDataResponse`).
    pub struct SetDataResponse {
        /// The node's new metadata.
        pub stat: Stat,
    }
}

record! {
    /// getACL (6) (`proto.GetACLRequest`).
    pub struct GetAclRequest {
        /// Path of the node.
        pub path: String,
    }
}

record! {
    /// Reply to getACL (`proto.GetACLResponse`).
    pub struct GetAclResponse {
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// The node's metadata.
        pub stat: Stat,
    }
}

record! {
    /// setACL (7) (`proto.SetACLRequest`).
    pub struct SetAclRequest {
        /// Path of the node.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version (`aversion`), -1 for any.
        pub version: i32,
    }
}

record! {
    /// Reply to setACL (`proto.SetACLResponse`).
    pub struct SetAclResponse {
        /// The node's new metadata.
        pub stat: Stat,
    }
}

record! {
    /// getChildren (8) (`proto.GetChildrenRequest`).
    pub struct GetChildrenRequest {
        /// Path of the node.
        pub path: String,
        /// Whether to leave a child watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to getChildren (`proto.GetChildrenResponse`).
    pub struct GetChildrenResponse {
        /// Names (not paths) of the children, unordered.
        pub children: Vec<String>,
    }
}

record! {
    /// getChildren2 (12) (`proto.GetChildren2Request`).
    pub struct GetChildren2Request {
        /// Path of the node.
        pub path: String,
        /// Whether to leave a child watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to getChildren2 (`proto.GetChildren2Response`).
    pub struct GetChildren2Response {
        /// Names of the children, unordered.
        pub children: Vec<String>,
        /// The node's metadata.
        pub stat: Stat,
    }
}

record! {
    /// sync (9) (`proto.SyncRequest`).
    pub struct SyncRequest {
        /// Path to sync.
        pub path: String,
    }
}

record! {
    /// Reply to sync (`proto.SyncResponse`).
    pub struct SyncResponse {
        /// The path that was synced.
        pub path: String,
    }
}

record! {
    /// check (13), inside a multi (`proto.CheckVersionRequest`).
    pub struct CheckVersionRequest {
        /// Path of the node.
        pub path: String,
        /// Expected version.
        pub version: i32,
    }
}

record! {
    /// The error of one failed operation inside a multi response, and the body of an addWatch
    /// reply (`proto.ErrorResponse`).
    pub struct ErrorResponse {
        /// The error.
        pub err: ErrorCode,
    }
}

record! {
    /// setWatches (101), sent with xid [`xid::SET_WATCHES`](crate::xid::SET_WATCHES) after a
    /// reconnect (`proto.SetWatches`). The reply has no body.
    pub struct SetWatches {
        /// The last zxid the client saw; changes after it fire the watches.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

record! {
    /// setWatches2 (105): [`SetWatches`] plus persistent watches (`proto.SetWatches2`).
    pub struct SetWatches2 {
        /// The last zxid the client saw.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// addWatch (106) (`proto.AddWatchRequest`); the reply body is an [`ErrorResponse`] (err 0).
    pub struct AddWatchRequest {
        /// Path of the node.
        pub path: String,
        /// [`AddWatchMode`](crate::AddWatchMode).
        pub mode: i32,
    }
}

record! {
    /// removeWatches (18) (`proto.RemoveWatchesRequest`); the reply has no body.
    pub struct RemoveWatchesRequest {
        /// Path of the node.
        pub path: String,
        /// [`WatcherType`](crate::WatcherType).
        pub watcher_type: i32,
    }
}

record! {
    /// checkWatches (17) (`proto.CheckWatchesRequest`); the reply has no body.
    pub struct CheckWatchesRequest {
        /// Path of the node.
        pub path: String,
        /// [`WatcherType`](crate::WatcherType).
        pub watcher_type: i32,
    }
}

record! {
    /// getEphemerals (103) (`proto.GetEphemeralsRequest`).
    pub struct GetEphemeralsRequest {
        /// Only ephemerals under this prefix ("/" for all).
        pub prefix_path: String,
    }
}

record! {
    /// Reply to getEphemerals (`proto.GetEphemeralsResponse`).
    pub struct GetEphemeralsResponse {
        /// Paths of the session's ephemeral nodes.
        pub ephemerals: Vec<String>,
    }
}

record! {
    /// getAllChildrenNumber (104) (`proto.GetAllChildrenNumberRequest`).
    pub struct GetAllChildrenNumberRequest {
        /// Path of the node.
        pub path: String,
    }
}

record! {
    /// Reply to getAllChildrenNumber (`proto.GetAllChildrenNumberResponse`).
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

record! {
    /// Reply to whoAmI (107), whose request has no body (`proto.WhoAmIResponse`).
    pub struct WhoAmIResponse {
        /// The session's authenticated identities.
        pub client_info: Vec<ClientInfo>,
    }
}

record! {
    /// auth (100), sent with xid [`xid::AUTH`](crate::xid::AUTH) (`proto.AuthPacket`).
    pub struct AuthPacket {
        /// Always 0 in the Java client.
        pub auth_type: i32,
        /// The scheme, e.g. `digest`.
        pub scheme: String,
        /// Scheme-specific credentials, e.g. `user:password`.
        pub auth: Bytes,
    }
}

record! {
    /// sasl (102): a SASL token from the client (`proto.GetSASLRequest`).
    pub struct GetSaslRequest {
        /// The token.
        pub token: Bytes,
    }
}

record! {
    /// Reply to sasl (`proto.SetSASLResponse`).
    pub struct SetSaslResponse {
        /// The server's challenge; `None` when the server has nothing more to send.
        pub token: Option<Bytes>,
    }
}

record! {
    /// reconfig (16) (`proto.ReconfigRequest`); the reply is a [`GetDataResponse`] holding the
    /// new configuration.
    pub struct ReconfigRequest {
        /// Servers to add (incremental), or `None`.
        pub joining_servers: Option<String>,
        /// Server ids to remove (incremental), or `None`.
        pub leaving_servers: Option<String>,
        /// The complete new membership (non-incremental), or `None`.
        pub new_members: Option<String>,
        /// Expected current config version, -1 for any.
        pub cur_config_id: i64,
    }
}
