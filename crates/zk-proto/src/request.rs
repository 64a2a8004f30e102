//! Decoding a request body by its opcode (for test servers, proxies and fuzzing).

use bytes::{BufMut, Bytes};

use crate::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest,
    CreateTtlRequest, DecodeError, DeleteRequest, ExistsRequest, GetAclRequest,
    GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetDataRequest,
    GetEphemeralsRequest, GetSaslRequest, MultiRequest, OpCode, ReconfigRequest, Record,
    RemoveWatchesRequest, SetAclRequest, SetDataRequest, SetWatches, SetWatches2, SyncRequest,
};

/// A decoded request body, by opcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Request {
    /// create (1).
    Create(CreateRequest),
    /// create2 (15).
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists(ExistsRequest),
    /// getData (4), including getConfig.
    GetData(GetDataRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(GetAclRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(GetChildrenRequest),
    /// sync (9).
    Sync(SyncRequest),
    /// ping (11), no body.
    Ping,
    /// getChildren2 (12).
    GetChildren2(GetChildren2Request),
    /// check (13).
    Check(CheckVersionRequest),
    /// multi (14).
    Multi(MultiRequest),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(CheckWatchesRequest),
    /// removeWatches (18).
    RemoveWatches(RemoveWatchesRequest),
    /// multiRead (22).
    MultiRead(MultiRequest),
    /// auth (100).
    Auth(AuthPacket),
    /// setWatches (101).
    SetWatches(SetWatches),
    /// sasl (102).
    Sasl(GetSaslRequest),
    /// getEphemerals (103).
    GetEphemerals(GetEphemeralsRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// setWatches2 (105).
    SetWatches2(SetWatches2),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// whoAmI (107), no body.
    WhoAmI,
    /// closeSession (-11), no body.
    CloseSession,
}

macro_rules! request_dispatch {
    ($self:ident, $r:ident => $body:expr, empty => $empty:expr) => {
        match $self {
            Request::Create($r) | Request::Create2($r) | Request::CreateContainer($r) => $body,
            Request::CreateTtl($r) => $body,
            Request::Delete($r) => $body,
            Request::Exists($r) => $body,
            Request::GetData($r) => $body,
            Request::SetData($r) => $body,
            Request::GetAcl($r) => $body,
            Request::SetAcl($r) => $body,
            Request::GetChildren($r) => $body,
            Request::Sync($r) => $body,
            Request::GetChildren2($r) => $body,
            Request::Check($r) => $body,
            Request::Multi($r) | Request::MultiRead($r) => $body,
            Request::Reconfig($r) => $body,
            Request::CheckWatches($r) => $body,
            Request::RemoveWatches($r) => $body,
            Request::Auth($r) => $body,
            Request::SetWatches($r) => $body,
            Request::Sasl($r) => $body,
            Request::GetEphemerals($r) => $body,
            Request::GetAllChildrenNumber($r) => $body,
            Request::SetWatches2($r) => $body,
            Request::AddWatch($r) => $body,
            Request::Ping | Request::WhoAmI | Request::CloseSession => $empty,
        }
    };
}

impl Request {
    /// The opcode this request is sent with.
    #[must_use]
    pub const fn op_code(&self) -> OpCode {
        match self {
            Self::Create(_) => OpCode::Create,
            Self::Create2(_) => OpCode::Create2,
            Self::CreateContainer(_) => OpCode::CreateContainer,
            Self::CreateTtl(_) => OpCode::CreateTtl,
            Self::Delete(_) => OpCode::Delete,
            Self::Exists(_) => OpCode::Exists,
            Self::GetData(_) => OpCode::GetData,
            Self::SetData(_) => OpCode::SetData,
            Self::GetAcl(_) => OpCode::GetAcl,
            Self::SetAcl(_) => OpCode::SetAcl,
            Self::GetChildren(_) => OpCode::GetChildren,
            Self::Sync(_) => OpCode::Sync,
            Self::Ping => OpCode::Ping,
            Self::GetChildren2(_) => OpCode::GetChildren2,
            Self::Check(_) => OpCode::Check,
            Self::Multi(_) => OpCode::Multi,
            Self::Reconfig(_) => OpCode::Reconfig,
            Self::CheckWatches(_) => OpCode::CheckWatches,
            Self::RemoveWatches(_) => OpCode::RemoveWatches,
            Self::MultiRead(_) => OpCode::MultiRead,
            Self::Auth(_) => OpCode::Auth,
            Self::SetWatches(_) => OpCode::SetWatches,
            Self::Sasl(_) => OpCode::Sasl,
            Self::GetEphemerals(_) => OpCode::GetEphemerals,
            Self::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Self::SetWatches2(_) => OpCode::SetWatches2,
            Self::AddWatch(_) => OpCode::AddWatch,
            Self::WhoAmI => OpCode::WhoAmI,
            Self::CloseSession => OpCode::CloseSession,
        }
    }

    /// Appends the body's encoding to `buf` (nothing for ping, whoAmI and closeSession).
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        request_dispatch!(self, r => r.encode(buf), empty => {});
    }

    /// The exact number of bytes [`encode`](Self::encode) writes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        request_dispatch!(self, r => r.encoded_len(), empty => 0)
    }
}

/// Decodes the body of a request sent with `op`; the whole of `body` must be consumed.
///
/// # Errors
///
/// [`DecodeError::UnexpectedOpCode`] for notification, createSession, deleteContainer
/// (server-internal), error and unknown opcodes, else any [`DecodeError`] of the record.
pub fn decode_request(op: OpCode, body: Bytes) -> Result<Request, DecodeError> {
    use crate::decode_exact as exact;
    Ok(match op {
        OpCode::Create => Request::Create(exact(body)?),
        OpCode::Create2 => Request::Create2(exact(body)?),
        OpCode::CreateContainer => Request::CreateContainer(exact(body)?),
        OpCode::CreateTtl => Request::CreateTtl(exact(body)?),
        OpCode::Delete => Request::Delete(exact(body)?),
        OpCode::Exists => Request::Exists(exact(body)?),
        OpCode::GetData => Request::GetData(exact(body)?),
        OpCode::SetData => Request::SetData(exact(body)?),
        OpCode::GetAcl => Request::GetAcl(exact(body)?),
        OpCode::SetAcl => Request::SetAcl(exact(body)?),
        OpCode::GetChildren => Request::GetChildren(exact(body)?),
        OpCode::Sync => Request::Sync(exact(body)?),
        OpCode::GetChildren2 => Request::GetChildren2(exact(body)?),
        OpCode::Check => Request::Check(exact(body)?),
        OpCode::Multi => Request::Multi(exact(body)?),
        OpCode::Reconfig => Request::Reconfig(exact(body)?),
        OpCode::CheckWatches => Request::CheckWatches(exact(body)?),
        OpCode::RemoveWatches => Request::RemoveWatches(exact(body)?),
        OpCode::MultiRead => Request::MultiRead(exact(body)?),
        OpCode::Auth => Request::Auth(exact(body)?),
        OpCode::SetWatches => Request::SetWatches(exact(body)?),
        OpCode::Sasl => Request::Sasl(exact(body)?),
        OpCode::GetEphemerals => Request::GetEphemerals(exact(body)?),
        OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(exact(body)?),
        OpCode::SetWatches2 => Request::SetWatches2(exact(body)?),
        OpCode::AddWatch => Request::AddWatch(exact(body)?),
        OpCode::Ping | OpCode::WhoAmI | OpCode::CloseSession => {
            exact::<crate::Empty>(body)?;
            match op {
                OpCode::Ping => Request::Ping,
                OpCode::WhoAmI => Request::WhoAmI,
                _ => Request::CloseSession,
            }
        }
        OpCode::Notification
        | OpCode::CreateSession
        | OpCode::DeleteContainer
        | OpCode::Error
        | OpCode::Unknown(_) => return Err(DecodeError::UnexpectedOpCode(op.as_i32())),
    })
}
