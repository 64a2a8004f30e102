//! A sans-I/O, byte-exact, panic-free codec for the ZooKeeper client wire protocol.
//!
//! `zk-proto` turns bytes into ZooKeeper protocol records and back. It has no sockets, no
//! async runtime, no clock and no `unsafe`: a session layer feeds it the bytes it read and
//! writes the bytes it produces. It can be used on its own.
//!
//! # Layers
//!
//! 1. **Primitives** ([`jute`]): Jute's `int`, `long`, `boolean`, `buffer`, `ustring` and
//!    `vector`, and the [`Record`] trait every encodable type implements. Lengths are checked
//!    against the remaining input before anything is allocated; booleans and UTF-8 are strict.
//! 2. **Records**: every record a ZooKeeper 3.5–3.9 client sends or receives, with the field
//!    orders of `zookeeper.jute`: the handshake ([`ConnectRequest`], [`ConnectResponse`]), the
//!    headers ([`RequestHeader`], [`ReplyHeader`]), [`WatcherEvent`], [`Stat`], [`Acl`],
//!    request/response pairs for each operation, [`MultiRequest`]/[`MultiResponse`], and the
//!    codes ([`OpCode`], [`ErrorCode`], [`xid`], …). [`decode_response`] and [`decode_request`]
//!    pick the record by opcode.
//! 3. **Framing**: [`FrameDecoder`] splits an inbound stream into length-prefixed frames
//!    without copying payloads, with separate limits for frames to keep and frames to skip;
//!    [`write_frame`] (and [`write_request`]/[`write_record`]) produce outbound frames checked
//!    against the server's `jute.maxbuffer` ([`DEFAULT_MAX_OUTBOUND_FRAME`]).
//!
//! # Example: a getData round trip
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use zk_proto::*;
//!
//! // Client side: frame a request.
//! let mut out = BytesMut::new();
//! let header = RequestHeader { xid: 1, op: OpCode::GetData };
//! let body = GetDataRequest { path: "/app/config".into(), watch: true };
//! write_request(&mut out, DEFAULT_MAX_OUTBOUND_FRAME, &header, &body)?;
//!
//! // Server side (simulated): a reply frame.
//! let mut reply = BytesMut::new();
//! write_frame(&mut reply, usize::MAX, |buf| {
//!     ReplyHeader { xid: 1, zxid: 42, err: ErrorCode::Ok }.encode(buf);
//!     GetDataResponse { data: Some(Bytes::from_static(b"v1")), stat: Stat::default() }.encode(buf);
//! })?;
//!
//! // Client side: split the stream and decode.
//! let mut decoder = FrameDecoder::default();
//! let Some(Frame::Complete(mut payload)) = decoder.decode(&mut reply)? else { unreachable!() };
//! let header = ReplyHeader::decode(&mut payload)?;
//! assert_eq!((header.xid, header.err), (1, ErrorCode::Ok));
//! let Response::GetData(data) = decode_response(OpCode::GetData, payload)? else { unreachable!() };
//! assert_eq!(data.data.as_deref(), Some(&b"v1"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! * **No panics** on any input, and **bounded allocation**: decoding allocates at most a small
//!   multiple of the input it is given; [`FrameDecoder`] rejects a bad length before reserving.
//!   Malformed input yields a typed [`DecodeError`] or [`FrameError`].
//! * **Byte-exact**: the test suite decodes golden vectors produced by the real ZooKeeper 3.8
//!   Java classes and re-encodes them byte for byte; property tests check `decode(encode(x)) ==
//!   x` for every record; fuzz targets exercise every decoder.
//! * **Zero copy**: frames and `buffer` fields are slices of the input [`bytes::Bytes`].
//! * **Unknown codes are preserved** (`Unknown(i32)` variants), never an error or a panic.
//!
//! # Limits
//!
//! | constant | default | applies to |
//! |---|---|---|
//! | [`DEFAULT_MAX_OUTBOUND_FRAME`] | 1,048,575 | outbound payloads: the server's `jute.maxbuffer`; a larger frame makes the server drop the connection |
//! | [`DEFAULT_MAX_INBOUND_FRAME`] | 16 MiB | inbound payloads returned whole (a maximal getData reply is 1,048,612 bytes) |
//! | [`DEFAULT_MAX_DISCARD_FRAME`] | 256 MiB | inbound payloads skipped as [`Frame::Oversized`]; beyond it the stream fails |
//!
//! All limits count payload bytes, excluding the 4-byte length prefix, and are configurable.
//!
//! # Special xids and codes
//!
//! The xids the protocol reserves (notification -1, ping -2, auth -4, setWatches -8) are in
//! [`xid`]; SASL uses ordinary xids. [`OpCode`], [`ErrorCode`], [`EventType`], [`KeeperState`],
//! [`CreateMode`], [`AddWatchMode`] and [`WatcherType`] keep unknown codes as `Unknown(i32)`.
//!
//! # Handshake notes
//!
//! [`ConnectRequest`] always encodes the 45-byte form with the `readOnly` byte.
//! [`ConnectResponse::decode_payload`] accepts only 36- or 37-byte payloads with a 16-byte
//! password, so the 16-byte `NotReadOnly` reply header a 3.8 server sends to a read-only client
//! (without local sessions) is rejected instead of being misread as a session.
//!
//! # Strings written by Java
//!
//! ZooKeeper 3.8's Java serializer writes supplementary characters (outside the Basic
//! Multilingual Plane, e.g. emoji) as CESU-8 surrogate pairs, while its deserializer expects
//! standard UTF-8. This codec decodes both and always encodes standard UTF-8, so such strings
//! (ACL ids, whoAmI users, configuration data) survive a round trip through a server. Paths
//! cannot contain them: the server rejects them with `BadArguments`. See [`jute`].
//!
//! # How it is tested
//!
//! * `tests/golden/vectors.txt`: 150 vectors written by the ZooKeeper 3.8.0 Java classes
//!   (`tests/golden/GenGolden.java`; the file header has the exact command line). Records are
//!   serialized with `BinaryOutputArchive`, request frames with the Java client's own
//!   `ClientCnxn.Packet.createBB()`, and every vector must decode and re-encode byte for byte.
//! * `tests/golden/server_frames.txt`: 45 frames a real 3.8.0 server sent in reply to
//!   `capture_server.py`, checked the same way.
//! * `tests/roundtrip.rs`: proptest `decode(encode(x)) == x` for every record, plus truncation
//!   and trailing-byte checks, and chunking-independence of the [`FrameDecoder`].
//! * `fuzz/` (cargo-fuzz, nightly): the targets `frame_decoder`, `reply_decode`,
//!   `watcher_event` and `connect_response` call the functions of the hidden `fuzzing` module;
//!   `tests/fuzz_corpus.rs` replays the committed seed corpora through the same functions on
//!   stable. Run one with `cd fuzz && cargo +nightly fuzz run reply_decode`.
#![forbid(unsafe_code)]

mod codes;
mod error;
mod frame;
pub mod jute;
mod multi;
mod records;
mod request;
mod response;

#[doc(hidden)]
pub mod fuzzing;

pub use codes::{
    AddWatchMode, CONFIG_NODE, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType,
    perms, xid,
};
pub use error::{DecodeError, EncodeError, FrameError};
pub use frame::{
    DEFAULT_MAX_DISCARD_FRAME, DEFAULT_MAX_INBOUND_FRAME, DEFAULT_MAX_OUTBOUND_FRAME, Frame,
    FrameDecoder, OVERSIZED_PREFIX_LEN, write_frame, write_record, write_request,
};
pub use jute::{Record, decode_exact};
pub use multi::{MultiHeader, MultiOp, MultiRequest, MultiResponse, MultiResult};
pub use records::{
    Acl, AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, ClientInfo,
    ConnectRequest, ConnectResponse, Create2Response, CreateRequest, CreateResponse,
    CreateTtlRequest, DeleteRequest, Empty, ErrorResponse, ExistsRequest, ExistsResponse,
    GetAclRequest, GetAclResponse, GetAllChildrenNumberRequest, GetAllChildrenNumberResponse,
    GetChildren2Request, GetChildren2Response, GetChildrenRequest, GetChildrenResponse,
    GetDataRequest, GetDataResponse, GetEphemeralsRequest, GetEphemeralsResponse, GetSaslRequest,
    Id, ReconfigRequest, RemoveWatchesRequest, ReplyHeader, RequestHeader, SetAclRequest,
    SetAclResponse, SetDataRequest, SetDataResponse, SetSaslResponse, SetWatches, SetWatches2,
    Stat, SyncRequest, SyncResponse, WatcherEvent, WhoAmIResponse,
};
pub use request::{Request, decode_request};
pub use response::{Response, decode_response};
