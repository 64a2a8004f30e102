//! Property tests: `decode(encode(x)) == x` for every record, `encoded_len` is exact, and every
//! strict prefix of an encoding fails to decode (without panicking).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use zk_proto::*;

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(bytes())
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-z0-9/_.-]{0,24}",
        any::<String>(),
        Just(String::new()),
        Just("/\u{1f600}/\u{e9}".to_owned()),
    ]
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(string(), 0..6)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |(
                (czxid, mzxid, ctime, mtime),
                (version, cversion, aversion),
                (ephemeral_owner, data_length, num_children, pzxid),
            )| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            },
        )
}

fn id() -> impl Strategy<Value = Id> {
    (string(), string()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    prop::collection::vec(
        (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id }),
        0..4,
    )
}

fn op_code() -> impl Strategy<Value = OpCode> {
    any::<i32>().prop_map(OpCode::from)
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        (-130..=0).prop_map(ErrorCode::from),
        any::<i32>().prop_map(ErrorCode::from)
    ]
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (string(), bytes(), acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn create_ttl() -> impl Strategy<Value = CreateTtlRequest> {
    (create(), any::<i64>()).prop_map(|(c, ttl)| CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl,
    })
}

fn path_version() -> impl Strategy<Value = (String, i32)> {
    (string(), any::<i32>())
}

fn path_watch() -> impl Strategy<Value = (String, bool)> {
    (string(), any::<bool>())
}

fn get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (opt_bytes(), stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(MultiOp::Create),
        create().prop_map(MultiOp::Create2),
        create().prop_map(MultiOp::CreateContainer),
        create_ttl().prop_map(MultiOp::CreateTtl),
        path_version().prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (string(), bytes(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        path_version()
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
        path_watch()
            .prop_map(|(path, watch)| MultiOp::GetChildren(GetChildrenRequest { path, watch })),
        path_watch().prop_map(|(path, watch)| MultiOp::GetData(GetDataRequest { path, watch })),
    ]
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        string().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        (string(), stat())
            .prop_map(|(path, stat)| MultiResult::Create2(Create2Response { path, stat })),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData(SetDataResponse { stat })),
        Just(MultiResult::Check),
        strings().prop_map(|children| MultiResult::GetChildren(GetChildrenResponse { children })),
        get_data_response().prop_map(MultiResult::GetData),
        error_code().prop_map(MultiResult::Error),
    ]
}

/// Checks the round trip, the exact length, and that strict prefixes are rejected.
fn check<R: Record + PartialEq + std::fmt::Debug>(value: &R) -> Result<(), TestCaseError> {
    check_with(value, true)
}

/// For the handshake records, whose trailing readOnly byte is optional: a `false` one may be cut.
fn check_connect<R: Record + PartialEq + std::fmt::Debug>(value: &R) -> Result<(), TestCaseError> {
    check_with(value, false)
}

fn check_with<R: Record + PartialEq + std::fmt::Debug>(
    value: &R,
    last_byte_required: bool,
) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    value.encode(&mut buf);
    prop_assert_eq!(buf.len(), value.encoded_len());
    let bytes = buf.freeze();
    let decoded: R = decode_exact(bytes.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, value);
    // Trailing garbage is reported.
    let mut longer = BytesMut::from(&bytes[..]);
    longer.extend_from_slice(&[0]);
    prop_assert_eq!(
        decode_exact::<R>(longer.freeze()),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    // A truncated encoding never decodes to the same value (and never panics).
    for cut in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if cut < bytes.len() && (last_byte_required || cut + 1 < bytes.len()) {
            let truncated = decode_exact::<R>(bytes.slice(..cut));
            prop_assert!(truncated.as_ref() != Ok(value), "prefix {} decoded", cut);
        }
    }
    Ok(())
}

macro_rules! round_trip {
    ($($name:ident: $strategy:expr;)*) => {
        round_trip!(check => $($name: $strategy;)*);
    };
    ($checker:ident => $($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            $(
                #[test]
                fn $name(value in $strategy) {
                    $checker(&value)?;
                }
            )*
        }
    };
}

round_trip! {
    check_connect =>
    connect_request_round_trips: (any::<i32>(), any::<i64>(), any::<i32>(), any::<i64>(), bytes(), any::<bool>())
        .prop_map(|(protocol_version, last_zxid_seen, timeout, session_id, passwd, read_only)| ConnectRequest {
            protocol_version, last_zxid_seen, timeout, session_id, passwd, read_only,
        });
    connect_response_round_trips: (any::<i32>(), any::<i32>(), any::<i64>(), bytes(), any::<bool>())
        .prop_map(|(protocol_version, timeout, session_id, passwd, read_only)| ConnectResponse {
            protocol_version, timeout, session_id, passwd, read_only,
        });
}

round_trip! {
    stat_round_trips: stat();
    id_round_trips: id();
    acl_round_trips: (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id });
    client_info_round_trips: (string(), string())
        .prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user });
    request_header_round_trips: (any::<i32>(), op_code()).prop_map(|(xid, op)| RequestHeader { xid, op });
    reply_header_round_trips: (any::<i32>(), any::<i64>(), error_code())
        .prop_map(|(xid, zxid, err)| ReplyHeader { xid, zxid, err });
    watcher_event_round_trips: (any::<i32>(), any::<i32>(), string())
        .prop_map(|(event_type, state, path)| WatcherEvent { event_type, state, path });
    create_round_trips: create();
    create_ttl_round_trips: create_ttl();
    create_response_round_trips: string().prop_map(|path| CreateResponse { path });
    create2_response_round_trips: (string(), stat()).prop_map(|(path, stat)| Create2Response { path, stat });
    delete_round_trips: path_version().prop_map(|(path, version)| DeleteRequest { path, version });
    exists_round_trips: path_watch().prop_map(|(path, watch)| ExistsRequest { path, watch });
    exists_response_round_trips: stat().prop_map(|stat| ExistsResponse { stat });
    get_data_round_trips: path_watch().prop_map(|(path, watch)| GetDataRequest { path, watch });
    get_data_response_round_trips: get_data_response();
    set_data_round_trips: (string(), bytes(), any::<i32>())
        .prop_map(|(path, data, version)| SetDataRequest { path, data, version });
    set_data_response_round_trips: stat().prop_map(|stat| SetDataResponse { stat });
    get_acl_round_trips: string().prop_map(|path| GetAclRequest { path });
    get_acl_response_round_trips: (acls(), stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat });
    set_acl_round_trips: (string(), acls(), any::<i32>())
        .prop_map(|(path, acl, version)| SetAclRequest { path, acl, version });
    set_acl_response_round_trips: stat().prop_map(|stat| SetAclResponse { stat });
    get_children_round_trips: path_watch().prop_map(|(path, watch)| GetChildrenRequest { path, watch });
    get_children_response_round_trips: strings().prop_map(|children| GetChildrenResponse { children });
    get_children2_round_trips: path_watch().prop_map(|(path, watch)| GetChildren2Request { path, watch });
    get_children2_response_round_trips: (strings(), stat())
        .prop_map(|(children, stat)| GetChildren2Response { children, stat });
    sync_round_trips: string().prop_map(|path| SyncRequest { path });
    sync_response_round_trips: string().prop_map(|path| SyncResponse { path });
    check_version_round_trips: path_version().prop_map(|(path, version)| CheckVersionRequest { path, version });
    error_response_round_trips: error_code().prop_map(|err| ErrorResponse { err });
    set_watches_round_trips: (any::<i64>(), strings(), strings(), strings())
        .prop_map(|(relative_zxid, data_watches, exist_watches, child_watches)| SetWatches {
            relative_zxid, data_watches, exist_watches, child_watches,
        });
    set_watches2_round_trips: (any::<i64>(), strings(), strings(), strings(), strings(), strings())
        .prop_map(|(relative_zxid, data_watches, exist_watches, child_watches, persistent_watches, persistent_recursive_watches)| SetWatches2 {
            relative_zxid, data_watches, exist_watches, child_watches, persistent_watches, persistent_recursive_watches,
        });
    add_watch_round_trips: path_version().prop_map(|(path, mode)| AddWatchRequest { path, mode });
    remove_watches_round_trips: path_version()
        .prop_map(|(path, watcher_type)| RemoveWatchesRequest { path, watcher_type });
    check_watches_round_trips: path_version()
        .prop_map(|(path, watcher_type)| CheckWatchesRequest { path, watcher_type });
    get_ephemerals_round_trips: string().prop_map(|prefix_path| GetEphemeralsRequest { prefix_path });
    get_ephemerals_response_round_trips: strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals });
    get_all_children_number_round_trips: string().prop_map(|path| GetAllChildrenNumberRequest { path });
    get_all_children_number_response_round_trips: any::<i32>()
        .prop_map(|total_number| GetAllChildrenNumberResponse { total_number });
    who_am_i_response_round_trips: prop::collection::vec(
        (string(), string()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }), 0..4)
        .prop_map(|client_info| WhoAmIResponse { client_info });
    auth_packet_round_trips: (any::<i32>(), string(), bytes())
        .prop_map(|(auth_type, scheme, auth)| AuthPacket { auth_type, scheme, auth });
    get_sasl_round_trips: bytes().prop_map(|token| GetSaslRequest { token });
    set_sasl_response_round_trips: opt_bytes().prop_map(|token| SetSaslResponse { token });
    reconfig_round_trips: (prop::option::of(string()), prop::option::of(string()), prop::option::of(string()), any::<i64>())
        .prop_map(|(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
            joining_servers, leaving_servers, new_members, cur_config_id,
        });
    multi_header_round_trips: (any::<i32>(), any::<bool>(), any::<i32>())
        .prop_map(|(op_type, done, err)| MultiHeader { op_type, done, err });
    multi_request_round_trips: prop::collection::vec(multi_op(), 0..6).prop_map(|ops| MultiRequest { ops });
    multi_response_round_trips: prop::collection::vec(multi_result(), 0..6)
        .prop_map(|results| MultiResponse { results });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes never panic any decoder, and whatever decodes re-encodes consistently.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::reply_decode(&data);
        fuzzing::watcher_event(&data);
        fuzzing::connect_response(&data);
        fuzzing::frame_decoder(&data);
    }

    /// A stream of frames decodes to the same frames whatever the chunking.
    #[test]
    fn frame_decoder_is_chunking_independent(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        cuts in prop::collection::vec(1usize..16, 1..64),
    ) {
        let mut wire = BytesMut::new();
        for p in &payloads {
            write_frame(&mut wire, usize::MAX, |b| b.extend_from_slice(p))
                .or_else(|e| if p.is_empty() {
                    // write_frame refuses empty frames; build one by hand.
                    wire.extend_from_slice(&[0, 0, 0, 0]);
                    Ok(0)
                } else { Err(e) })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let mut decoder = FrameDecoder::new(32, 1024);
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            i += 1;
            src.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(frame) = decoder.decode(&mut src).map_err(|e| TestCaseError::fail(e.to_string()))? {
                got.push(frame);
            }
        }
        prop_assert!(decoder.is_idle());
        let expected: Vec<Frame> = payloads
            .iter()
            .map(|p| if p.len() <= 32 {
                Frame::Complete(Bytes::copy_from_slice(p))
            } else {
                Frame::Oversized { prefix: Bytes::copy_from_slice(&p[..16]), len: p.len() }
            })
            .collect();
        prop_assert_eq!(got, expected);
    }
}
