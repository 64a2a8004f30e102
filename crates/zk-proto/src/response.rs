//! Decoding a reply body by the opcode of the request it answers.

use bytes::{BufMut, Bytes};

use crate::{
    Create2Response, CreateResponse, DecodeError, ErrorResponse, ExistsResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, MultiResponse, OpCode, Record, SetAclResponse, SetDataResponse,
    SetSaslResponse, SyncResponse, WhoAmIResponse,
};

/// A decoded reply body, by request kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Response {
    /// No body: delete, deleteContainer, check, ping, auth, setWatches, setWatches2,
    /// removeWatches, checkWatches, closeSession.
    Empty,
    /// addWatch: the server answers with an [`ErrorResponse`] body (err 0).
    AddWatch(ErrorResponse),
    /// create.
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists.
    Exists(ExistsResponse),
    /// getData and reconfig.
    GetData(GetDataResponse),
    /// setData.
    SetData(SetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// setACL.
    SetAcl(SetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// sasl.
    Sasl(SetSaslResponse),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
}

impl Response {
    /// Appends the body's encoding to `buf` (nothing for [`Response::Empty`]).
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            Self::Empty => {}
            Self::AddWatch(r) => r.encode(buf),
            Self::Create(r) => r.encode(buf),
            Self::Create2(r) => r.encode(buf),
            Self::Exists(r) => r.encode(buf),
            Self::GetData(r) => r.encode(buf),
            Self::SetData(r) => r.encode(buf),
            Self::GetAcl(r) => r.encode(buf),
            Self::SetAcl(r) => r.encode(buf),
            Self::GetChildren(r) => r.encode(buf),
            Self::GetChildren2(r) => r.encode(buf),
            Self::Sync(r) => r.encode(buf),
            Self::Multi(r) => r.encode(buf),
            Self::Sasl(r) => r.encode(buf),
            Self::GetEphemerals(r) => r.encode(buf),
            Self::GetAllChildrenNumber(r) => r.encode(buf),
            Self::WhoAmI(r) => r.encode(buf),
        }
    }

    /// The exact number of bytes [`encode`](Self::encode) writes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::AddWatch(r) => r.encoded_len(),
            Self::Create(r) => r.encoded_len(),
            Self::Create2(r) => r.encoded_len(),
            Self::Exists(r) => r.encoded_len(),
            Self::GetData(r) => r.encoded_len(),
            Self::SetData(r) => r.encoded_len(),
            Self::GetAcl(r) => r.encoded_len(),
            Self::SetAcl(r) => r.encoded_len(),
            Self::GetChildren(r) => r.encoded_len(),
            Self::GetChildren2(r) => r.encoded_len(),
            Self::Sync(r) => r.encoded_len(),
            Self::Multi(r) => r.encoded_len(),
            Self::Sasl(r) => r.encoded_len(),
            Self::GetEphemerals(r) => r.encoded_len(),
            Self::GetAllChildrenNumber(r) => r.encoded_len(),
            Self::WhoAmI(r) => r.encoded_len(),
        }
    }
}

/// Decodes the body of a successful reply to a request sent with `op`.
///
/// Call it only when the [`ReplyHeader`](crate::ReplyHeader)'s `err` is
/// [`ErrorCode::Ok`](crate::ErrorCode::Ok): error replies have no body. The whole of `body` must
/// be consumed. getConfig is a getData and decodes as one.
///
/// # Errors
///
/// [`DecodeError::UnexpectedOpCode`] for opcodes that are never answered with a body of their
/// own (notification, createSession, error, unknown codes), else any [`DecodeError`] of the
/// record, including [`DecodeError::TrailingBytes`].
pub fn decode_response(op: OpCode, body: Bytes) -> Result<Response, DecodeError> {
    use crate::decode_exact as exact;
    Ok(match op {
        OpCode::Delete
        | OpCode::DeleteContainer
        | OpCode::Check
        | OpCode::Ping
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::RemoveWatches
        | OpCode::CheckWatches
        | OpCode::CloseSession => {
            exact::<crate::Empty>(body)?;
            Response::Empty
        }
        OpCode::AddWatch => Response::AddWatch(exact(body)?),
        OpCode::Create => Response::Create(exact(body)?),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Response::Create2(exact(body)?)
        }
        OpCode::Exists => Response::Exists(exact(body)?),
        OpCode::GetData | OpCode::Reconfig => Response::GetData(exact(body)?),
        OpCode::SetData => Response::SetData(exact(body)?),
        OpCode::GetAcl => Response::GetAcl(exact(body)?),
        OpCode::SetAcl => Response::SetAcl(exact(body)?),
        OpCode::GetChildren => Response::GetChildren(exact(body)?),
        OpCode::GetChildren2 => Response::GetChildren2(exact(body)?),
        OpCode::Sync => Response::Sync(exact(body)?),
        OpCode::Multi | OpCode::MultiRead => Response::Multi(exact(body)?),
        OpCode::Sasl => Response::Sasl(exact(body)?),
        OpCode::GetEphemerals => Response::GetEphemerals(exact(body)?),
        OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(exact(body)?),
        OpCode::WhoAmI => Response::WhoAmI(exact(body)?),
        OpCode::Notification | OpCode::CreateSession | OpCode::Error | OpCode::Unknown(_) => {
            return Err(DecodeError::UnexpectedOpCode(op.as_i32()));
        }
    })
}
