//! Error types of the codec layers.

/// A record could not be decoded.
///
/// Every malformed input yields one of these variants; decoding never panics and never allocates
/// more than the input it was given can justify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a fixed-size field.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} remaining")]
    UnexpectedEnd {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left in the input.
        remaining: usize,
    },
    /// A buffer, string or vector length was negative and not the null marker `-1`.
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// A buffer, string or vector declared more content than the remaining input can hold.
    ///
    /// For a vector `len` is the element count and the check uses the smallest possible encoding
    /// of one element, so an absurd count is rejected before anything is allocated.
    #[error("declared length {len} exceeds what the remaining {remaining} bytes can hold")]
    LengthTooLarge {
        /// The declared length (bytes for buffers and strings, elements for vectors).
        len: usize,
        /// Bytes that were left in the input.
        remaining: usize,
    },
    /// A string was not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A complete record was decoded but input was left over.
    #[error("{count} trailing bytes after the record")]
    TrailingBytes {
        /// Number of bytes left over.
        count: usize,
    },
    /// A boolean byte was neither 0 nor 1.
    #[error("invalid boolean byte {0:#04x}")]
    InvalidBool(u8),
    /// A ConnectResponse payload was neither 36 nor 37 bytes long.
    #[error("ConnectResponse payload is {0} bytes, expected 36 or 37")]
    BadConnectResponseLength(usize),
    /// A ConnectResponse carried a session password that is not 16 bytes long.
    #[error("ConnectResponse password is {0} bytes, expected 16")]
    BadPasswordLength(usize),
    /// A multi request or response contained an operation type that is not allowed there.
    #[error("operation type {0} is not valid inside a multi")]
    InvalidMultiOpType(i32),
    /// A multi terminator (`done = true`) did not carry type `-1`, or a non-terminator carried
    /// `done = true`.
    #[error("malformed multi header: type {op_type}, done {done}")]
    BadMultiHeader {
        /// The header's operation type.
        op_type: i32,
        /// The header's `done` flag.
        done: bool,
    },
    /// The operation code has no record in this direction: notification, createSession, error
    /// or an unknown code (and deleteContainer, for requests).
    #[error("opcode {0} has no record to decode")]
    UnexpectedOpCode(i32),
}

/// An outbound frame could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload is larger than the configured maximum (or than `i32::MAX`).
    ///
    /// The ZooKeeper server closes the connection, without a reply, when a frame exceeds its
    /// `jute.maxbuffer`; rejecting it locally fails only this request.
    #[error("frame payload of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Payload length in bytes (without the 4-byte length prefix).
        len: usize,
        /// The limit that applied.
        max: usize,
    },
    /// The payload was empty. The NIO server closes the connection on a zero-length frame.
    #[error("zero-length frame")]
    ZeroLength,
    /// The body closure truncated the output buffer below the start of the frame.
    #[error("frame body truncated the output buffer")]
    BodyTruncated,
}

/// The inbound byte stream cannot be split into frames any more; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix was negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// The length prefix exceeds the discard limit, so the frame can neither be read nor skipped.
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge {
        /// The advertised payload length.
        len: usize,
        /// The limit that applied (the decoder's `max_discard_len`).
        max: usize,
    },
}
