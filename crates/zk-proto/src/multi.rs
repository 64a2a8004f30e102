//! multi (14) and multiRead (22): a sequence of operations, each preceded by a [`MultiHeader`],
//! terminated by a header with `done = true` and type -1.

use bytes::{BufMut, Bytes};

use crate::jute::record;
use crate::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DecodeError, DeleteRequest, ErrorCode, ErrorResponse, GetChildrenRequest, GetChildrenResponse,
    GetDataRequest, GetDataResponse, OpCode, Record, SetDataRequest, SetDataResponse,
};

record! {
    /// Precedes each operation or result of a multi, and terminates the list (`proto.MultiHeader`).
    pub struct MultiHeader {
        /// The operation's [`OpCode`], or -1 for an error result and for the terminator.
        pub op_type: i32,
        /// `true` only on the terminator.
        pub done: bool,
        /// -1 in requests and the terminator; 0 or the error code in results.
        pub err: i32,
    }
}

impl MultiHeader {
    /// The header that ends every multi request and response: `{-1, true, -1}`.
    pub const TERMINATOR: Self = Self {
        op_type: -1,
        done: true,
        err: -1,
    };

    /// Reads a header; `Ok(None)` for a well-formed terminator.
    fn decode_next(buf: &mut Bytes) -> Result<Option<Self>, DecodeError> {
        let header = Self::decode(buf)?;
        match (header.done, header.op_type) {
            (true, -1) => Ok(None),
            (false, _) => Ok(Some(header)),
            (true, op_type) => Err(DecodeError::BadMultiHeader {
                op_type,
                done: true,
            }),
        }
    }
}

const HEADER_LEN: usize = 9;

/// One operation of a [`MultiRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MultiOp {
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
    /// setData (5).
    SetData(SetDataRequest),
    /// check (13).
    Check(CheckVersionRequest),
    /// getChildren (8), multiRead only.
    GetChildren(GetChildrenRequest),
    /// getData (4), multiRead only.
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The operation code written in this op's header.
    #[must_use]
    pub const fn op_code(&self) -> OpCode {
        match self {
            Self::Create(_) => OpCode::Create,
            Self::Create2(_) => OpCode::Create2,
            Self::CreateContainer(_) => OpCode::CreateContainer,
            Self::CreateTtl(_) => OpCode::CreateTtl,
            Self::Delete(_) => OpCode::Delete,
            Self::SetData(_) => OpCode::SetData,
            Self::Check(_) => OpCode::Check,
            Self::GetChildren(_) => OpCode::GetChildren,
            Self::GetData(_) => OpCode::GetData,
        }
    }

    /// Whether this op is a read (allowed in multiRead).
    #[must_use]
    pub const fn is_read(&self) -> bool {
        matches!(self, Self::GetChildren(_) | Self::GetData(_))
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            Self::Create(r) | Self::Create2(r) | Self::CreateContainer(r) => r.encode(buf),
            Self::CreateTtl(r) => r.encode(buf),
            Self::Delete(r) => r.encode(buf),
            Self::SetData(r) => r.encode(buf),
            Self::Check(r) => r.encode(buf),
            Self::GetChildren(r) => r.encode(buf),
            Self::GetData(r) => r.encode(buf),
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Self::Create(r) | Self::Create2(r) | Self::CreateContainer(r) => r.encoded_len(),
            Self::CreateTtl(r) => r.encoded_len(),
            Self::Delete(r) => r.encoded_len(),
            Self::SetData(r) => r.encoded_len(),
            Self::Check(r) => r.encoded_len(),
            Self::GetChildren(r) => r.encoded_len(),
            Self::GetData(r) => r.encoded_len(),
        }
    }

    fn decode_body(op_type: i32, buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(match OpCode::from_i32(op_type) {
            OpCode::Create => Self::Create(CreateRequest::decode(buf)?),
            OpCode::Create2 => Self::Create2(CreateRequest::decode(buf)?),
            OpCode::CreateContainer => Self::CreateContainer(CreateRequest::decode(buf)?),
            OpCode::CreateTtl => Self::CreateTtl(CreateTtlRequest::decode(buf)?),
            OpCode::Delete => Self::Delete(DeleteRequest::decode(buf)?),
            OpCode::SetData => Self::SetData(SetDataRequest::decode(buf)?),
            OpCode::Check => Self::Check(CheckVersionRequest::decode(buf)?),
            OpCode::GetChildren => Self::GetChildren(GetChildrenRequest::decode(buf)?),
            OpCode::GetData => Self::GetData(GetDataRequest::decode(buf)?),
            _ => return Err(DecodeError::InvalidMultiOpType(op_type)),
        })
    }
}

/// The body of a multi (14) or multiRead (22) request (Java's `MultiOperationRecord`).
///
/// Send it with [`OpCode::MultiRead`] when every op [`is_read`](MultiOp::is_read), else with
/// [`OpCode::Multi`]; the encoding is the same. Each op's header carries `err = -1`, which the
/// server ignores; decoding ignores it too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MultiRequest {
    /// The operations, applied atomically (multi) or independently (multiRead).
    pub ops: Vec<MultiOp>,
}

impl MultiRequest {
    /// The opcode to send this request with: multiRead if every op is a read (and there is at
    /// least one), else multi.
    #[must_use]
    pub fn op_code(&self) -> OpCode {
        if !self.ops.is_empty() && self.ops.iter().all(MultiOp::is_read) {
            OpCode::MultiRead
        } else {
            OpCode::Multi
        }
    }
}

impl Record for MultiRequest {
    const MIN_ENCODED_LEN: usize = HEADER_LEN;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        for op in &self.ops {
            MultiHeader {
                op_type: op.op_code().as_i32(),
                done: false,
                err: -1,
            }
            .encode(buf);
            op.encode_body(buf);
        }
        MultiHeader::TERMINATOR.encode(buf);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        // Every iteration consumes at least one header, so the loop is bounded by the input.
        let mut ops = Vec::new();
        while let Some(header) = MultiHeader::decode_next(buf)? {
            ops.push(MultiOp::decode_body(header.op_type, buf)?);
        }
        Ok(Self { ops })
    }

    fn encoded_len(&self) -> usize {
        self.ops
            .iter()
            .map(|op| HEADER_LEN + op.body_len())
            .sum::<usize>()
            + HEADER_LEN
    }
}

/// The result of one operation in a [`MultiResponse`] (Java's `OpResult`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MultiResult {
    /// create (1) succeeded.
    Create(CreateResponse),
    /// create2, createContainer or createTTL succeeded (the server reports all three as 15).
    Create2(Create2Response),
    /// delete (2) succeeded.
    Delete,
    /// setData (5) succeeded.
    SetData(SetDataResponse),
    /// check (13) succeeded.
    Check,
    /// getChildren (8) result (multiRead).
    GetChildren(GetChildrenResponse),
    /// getData (4) result (multiRead).
    GetData(GetDataResponse),
    /// The operation failed (type -1). In a failed multi, ops before the failing one report
    /// [`ErrorCode::Ok`] and ops after it [`ErrorCode::RuntimeInconsistency`].
    Error(ErrorCode),
}

impl MultiResult {
    /// The type written in this result's header.
    #[must_use]
    pub const fn op_code(&self) -> OpCode {
        match self {
            Self::Create(_) => OpCode::Create,
            Self::Create2(_) => OpCode::Create2,
            Self::Delete => OpCode::Delete,
            Self::SetData(_) => OpCode::SetData,
            Self::Check => OpCode::Check,
            Self::GetChildren(_) => OpCode::GetChildren,
            Self::GetData(_) => OpCode::GetData,
            Self::Error(_) => OpCode::Error,
        }
    }

    /// The error code written in this result's header: 0, or the error of an error result.
    #[must_use]
    pub const fn err(&self) -> ErrorCode {
        match self {
            Self::Error(err) => *err,
            _ => ErrorCode::Ok,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Self::Create(r) => r.encoded_len(),
            Self::Create2(r) => r.encoded_len(),
            Self::Delete | Self::Check => 0,
            Self::SetData(r) => r.encoded_len(),
            Self::GetChildren(r) => r.encoded_len(),
            Self::GetData(r) => r.encoded_len(),
            Self::Error(_) => 4,
        }
    }
}

/// The body of a multi or multiRead reply (Java's `MultiResponse`).
///
/// Decoding takes an error result's code from its [`ErrorResponse`] body (as Java does) and
/// ignores the header's `err` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MultiResponse {
    /// One result per operation, in request order.
    pub results: Vec<MultiResult>,
}

impl MultiResponse {
    /// The first error of a failed multi, if any op failed.
    #[must_use]
    pub fn first_error(&self) -> Option<ErrorCode> {
        self.results.iter().find_map(|r| match r {
            MultiResult::Error(err) if !err.is_ok() => Some(*err),
            _ => None,
        })
    }
}

impl Record for MultiResponse {
    const MIN_ENCODED_LEN: usize = HEADER_LEN;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        for result in &self.results {
            MultiHeader {
                op_type: result.op_code().as_i32(),
                done: false,
                err: result.err().as_i32(),
            }
            .encode(buf);
            match result {
                MultiResult::Create(r) => r.encode(buf),
                MultiResult::Create2(r) => r.encode(buf),
                MultiResult::Delete | MultiResult::Check => {}
                MultiResult::SetData(r) => r.encode(buf),
                MultiResult::GetChildren(r) => r.encode(buf),
                MultiResult::GetData(r) => r.encode(buf),
                MultiResult::Error(err) => ErrorResponse { err: *err }.encode(buf),
            }
        }
        MultiHeader::TERMINATOR.encode(buf);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        while let Some(header) = MultiHeader::decode_next(buf)? {
            let result = match OpCode::from_i32(header.op_type) {
                OpCode::Create => MultiResult::Create(CreateResponse::decode(buf)?),
                OpCode::Create2 => MultiResult::Create2(Create2Response::decode(buf)?),
                OpCode::Delete => MultiResult::Delete,
                OpCode::SetData => MultiResult::SetData(SetDataResponse::decode(buf)?),
                OpCode::Check => MultiResult::Check,
                OpCode::GetChildren => MultiResult::GetChildren(GetChildrenResponse::decode(buf)?),
                OpCode::GetData => MultiResult::GetData(GetDataResponse::decode(buf)?),
                OpCode::Error => MultiResult::Error(ErrorResponse::decode(buf)?.err),
                _ => return Err(DecodeError::InvalidMultiOpType(header.op_type)),
            };
            results.push(result);
        }
        Ok(Self { results })
    }

    fn encoded_len(&self) -> usize {
        self.results
            .iter()
            .map(|r| HEADER_LEN + r.body_len())
            .sum::<usize>()
            + HEADER_LEN
    }
}
