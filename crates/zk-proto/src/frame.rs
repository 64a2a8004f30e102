//! Layer 3: length-prefixed framing.
//!
//! Every message after the TCP (or TLS) handshake is a frame: a big-endian `i32` payload length
//! followed by that many payload bytes. Limits apply to the payload, excluding the prefix.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{EncodeError, FrameError, Record, RequestHeader};

/// Default outbound payload limit: the server's default `jute.maxbuffer` (0xfffff).
///
/// A larger frame makes the server close the connection without a reply.
pub const DEFAULT_MAX_OUTBOUND_FRAME: usize = 1_048_575;

/// Default inbound payload limit (16 MiB).
///
/// Replies can legitimately exceed `jute.maxbuffer`: a maximal getData reply is 1,048,612 bytes
/// and children lists are unbounded, so the inbound limit is separate and larger.
pub const DEFAULT_MAX_INBOUND_FRAME: usize = 16 * 1024 * 1024;

/// Default discard limit (256 MiB): frames above [`DEFAULT_MAX_INBOUND_FRAME`] and up to this
/// size are skipped (reported as [`Frame::Oversized`]); longer ones are a stream error.
pub const DEFAULT_MAX_DISCARD_FRAME: usize = 256 * 1024 * 1024;

/// How many payload bytes of an oversized frame are kept: a [`ReplyHeader`](crate::ReplyHeader).
pub const OVERSIZED_PREFIX_LEN: usize = 16;

const LEN_PREFIX: usize = 4;

/// One inbound frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A whole payload (zero-copy slice of the input buffer).
    Complete(Bytes),
    /// A frame longer than the decoder's `max_frame_len` but within its `max_discard_len`.
    ///
    /// Yielded as soon as `prefix` has arrived; the rest of the frame is then discarded as it
    /// arrives. The prefix is the reply header, so a session can fail just that xid instead of
    /// the whole connection.
    Oversized {
        /// The first `min(len, 16)` payload bytes.
        prefix: Bytes,
        /// The advertised payload length.
        len: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a length prefix.
    Head,
    /// The prefix of an oversized frame of `len` bytes is still arriving.
    OversizedPrefix { len: usize },
    /// Skipping the remaining `remaining` bytes of an oversized frame.
    Discard { remaining: usize },
}

/// A streaming frame splitter for inbound bytes.
///
/// Feed it whatever the transport read, in any chunking (partial frames, many frames per
/// chunk); each [`decode`](Self::decode) call returns at most one frame. Complete payloads are
/// zero-copy [`Bytes`] split off the input. It never reserves more than one frame's worth of
/// input (bounded by `max_frame_len`), and it rejects a negative length or one above
/// `max_discard_len` before reserving anything.
///
/// After an error the stream cannot be resynchronised: close the connection (further calls
/// return the same error).
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_len: usize,
    max_discard_len: usize,
    state: State,
}

impl FrameDecoder {
    /// Creates a decoder.
    ///
    /// Frames with a payload up to `max_frame_len` bytes are returned whole. Longer frames, up to
    /// `max_discard_len`, are reported as [`Frame::Oversized`] and skipped with bounded memory;
    /// longer ones still are a [`FrameError::TooLarge`]. A `max_discard_len` below
    /// `max_frame_len` is raised to it.
    #[must_use]
    pub fn new(max_frame_len: usize, max_discard_len: usize) -> Self {
        Self {
            max_frame_len,
            max_discard_len: max_discard_len.max(max_frame_len),
            state: State::Head,
        }
    }

    /// The largest payload returned as [`Frame::Complete`].
    #[must_use]
    pub const fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The largest payload skipped as [`Frame::Oversized`].
    #[must_use]
    pub const fn max_discard_len(&self) -> usize {
        self.max_discard_len
    }

    /// Whether the decoder is between frames (no partial frame pending).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.state == State::Head
    }

    /// Takes the next frame from the front of `src`, if one is complete.
    ///
    /// Returns `Ok(None)` when more input is needed; it may then have consumed bytes of an
    /// oversized frame being discarded, and may have reserved room in `src` for the rest of the
    /// pending frame.
    ///
    /// # Errors
    ///
    /// [`FrameError::NegativeLength`] or [`FrameError::TooLarge`]: the stream is unusable.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::Discard { remaining } => {
                    let n = remaining.min(src.len());
                    src.advance(n);
                    let remaining = remaining - n;
                    if remaining > 0 {
                        self.state = State::Discard { remaining };
                        return Ok(None);
                    }
                    self.state = State::Head;
                }
                State::OversizedPrefix { len } => {
                    let keep = len.min(OVERSIZED_PREFIX_LEN);
                    if src.len() < LEN_PREFIX + keep {
                        return Ok(None);
                    }
                    src.advance(LEN_PREFIX);
                    let prefix = src.split_to(keep).freeze();
                    self.state = match len - keep {
                        0 => State::Head,
                        remaining => State::Discard { remaining },
                    };
                    return Ok(Some(Frame::Oversized { prefix, len }));
                }
                State::Head => {
                    let Some(raw) = src.get(..LEN_PREFIX) else {
                        return Ok(None);
                    };
                    let raw = i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
                    let len = usize::try_from(raw).map_err(|_| FrameError::NegativeLength(raw))?;
                    if len > self.max_discard_len {
                        return Err(FrameError::TooLarge {
                            len,
                            max: self.max_discard_len,
                        });
                    }
                    if len > self.max_frame_len {
                        self.state = State::OversizedPrefix { len };
                        continue;
                    }
                    let total = LEN_PREFIX + len;
                    if src.len() < total {
                        src.reserve(total - src.len());
                        return Ok(None);
                    }
                    src.advance(LEN_PREFIX);
                    return Ok(Some(Frame::Complete(src.split_to(len).freeze())));
                }
            }
        }
    }
}

impl Default for FrameDecoder {
    /// [`DEFAULT_MAX_INBOUND_FRAME`] and [`DEFAULT_MAX_DISCARD_FRAME`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_INBOUND_FRAME, DEFAULT_MAX_DISCARD_FRAME)
    }
}

/// Appends one length-prefixed frame to `out`.
///
/// Reserves the 4-byte prefix, runs `body` to write the payload, then back-fills the length. If
/// the payload is empty or longer than `max_len` (or `i32::MAX`), `out` is truncated back to its
/// original length and an error is returned: nothing partial is left behind.
///
/// # Errors
///
/// [`EncodeError::FrameTooLarge`], [`EncodeError::ZeroLength`] (the NIO server closes the
/// connection on an empty frame) or [`EncodeError::BodyTruncated`] if `body` shrank `out`.
///
/// Returns the payload length.
pub fn write_frame(
    out: &mut BytesMut,
    max_len: usize,
    body: impl FnOnce(&mut BytesMut),
) -> Result<usize, EncodeError> {
    let start = out.len();
    out.put_i32(0);
    body(out);
    let Some(len) = out.len().checked_sub(start + LEN_PREFIX) else {
        out.truncate(start);
        return Err(EncodeError::BodyTruncated);
    };
    let max = max_len.min(i32::MAX as usize);
    let result = if len == 0 {
        Err(EncodeError::ZeroLength)
    } else if len > max {
        Err(EncodeError::FrameTooLarge { len, max })
    } else {
        i32::try_from(len).map_err(|_| EncodeError::FrameTooLarge { len, max })
    };
    match result {
        Ok(prefix) => {
            out[start..start + LEN_PREFIX].copy_from_slice(&prefix.to_be_bytes());
            Ok(len)
        }
        Err(err) => {
            out.truncate(start);
            Err(err)
        }
    }
}

/// Appends a request frame (header and body) to `out`; see [`write_frame`].
///
/// # Errors
///
/// As [`write_frame`].
pub fn write_request<R: Record>(
    out: &mut BytesMut,
    max_len: usize,
    header: &RequestHeader,
    body: &R,
) -> Result<usize, EncodeError> {
    let len = RequestHeader::LEN + body.encoded_len();
    let max = max_len.min(i32::MAX as usize);
    if len > max {
        return Err(EncodeError::FrameTooLarge { len, max });
    }
    let needed = LEN_PREFIX + len;
    out.reserve(needed);
    write_frame(out, max_len, |buf| {
        header.encode(buf);
        body.encode(buf);
    })
}

/// Appends a frame holding just `record` (e.g. a [`ConnectRequest`](crate::ConnectRequest));
/// see [`write_frame`].
///
/// # Errors
///
/// As [`write_frame`].
pub fn write_record<R: Record>(
    out: &mut BytesMut,
    max_len: usize,
    record: &R,
) -> Result<usize, EncodeError> {
    let len = record.encoded_len();
    let max = max_len.min(i32::MAX as usize);
    if len > max {
        return Err(EncodeError::FrameTooLarge { len, max });
    }
    out.reserve(LEN_PREFIX + len);
    write_frame(out, max_len, |buf| record.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn splits_many_frames_in_one_chunk() {
        let mut src = BytesMut::new();
        src.extend_from_slice(&frame(b"one"));
        src.extend_from_slice(&frame(b""));
        src.extend_from_slice(&frame(b"three"));
        let mut d = FrameDecoder::default();
        assert_eq!(
            d.decode(&mut src).unwrap(),
            Some(Frame::Complete(Bytes::from_static(b"one")))
        );
        assert_eq!(
            d.decode(&mut src).unwrap(),
            Some(Frame::Complete(Bytes::new()))
        );
        assert_eq!(
            d.decode(&mut src).unwrap(),
            Some(Frame::Complete(Bytes::from_static(b"three")))
        );
        assert_eq!(d.decode(&mut src).unwrap(), None);
        assert!(d.is_idle());
    }

    #[test]
    fn byte_at_a_time() {
        let wire = frame(b"hello world");
        let mut d = FrameDecoder::default();
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for b in wire {
            src.extend_from_slice(&[b]);
            if let Some(f) = d.decode(&mut src).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![Frame::Complete(Bytes::from_static(b"hello world"))]
        );
    }

    #[test]
    fn rejects_negative_and_too_large_before_allocating() {
        let mut d = FrameDecoder::new(10, 20);
        let mut src = BytesMut::from(&(-1_i32).to_be_bytes()[..]);
        assert_eq!(d.decode(&mut src), Err(FrameError::NegativeLength(-1)));
        // Sticky: the prefix is not consumed.
        assert_eq!(d.decode(&mut src), Err(FrameError::NegativeLength(-1)));
        let mut src = BytesMut::from(&21_i32.to_be_bytes()[..]);
        let cap = src.capacity();
        assert_eq!(
            d.decode(&mut src),
            Err(FrameError::TooLarge { len: 21, max: 20 })
        );
        assert_eq!(src.capacity(), cap);
    }

    #[test]
    fn oversized_frames_are_reported_and_skipped() {
        let mut d = FrameDecoder::new(8, 100);
        let big: Vec<u8> = (0..40).collect();
        let mut wire = frame(&big);
        wire.extend_from_slice(&frame(b"next"));
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            src.extend_from_slice(chunk);
            while let Some(f) = d.decode(&mut src).unwrap() {
                got.push(f);
            }
            assert!(src.len() <= 4 + 16 + 3);
        }
        assert_eq!(
            got,
            vec![
                Frame::Oversized {
                    prefix: Bytes::copy_from_slice(&big[..16]),
                    len: 40
                },
                Frame::Complete(Bytes::from_static(b"next")),
            ]
        );
    }

    #[test]
    fn oversized_shorter_than_a_header() {
        let mut d = FrameDecoder::new(2, 100);
        let mut src = BytesMut::from(&frame(b"abcde")[..]);
        assert_eq!(
            d.decode(&mut src).unwrap(),
            Some(Frame::Oversized {
                prefix: Bytes::from_static(b"abcde"),
                len: 5
            })
        );
        assert!(src.is_empty());
        assert!(d.is_idle());
    }

    #[test]
    fn complete_frames_are_zero_copy() {
        let mut src = BytesMut::from(&frame(b"payload")[..]);
        let range = src.as_ptr_range();
        let Some(Frame::Complete(p)) = FrameDecoder::default().decode(&mut src).unwrap() else {
            panic!("expected a frame");
        };
        assert!(range.contains(&p.as_ptr()));
    }

    #[test]
    fn write_frame_backfills_and_rolls_back() {
        let mut out = BytesMut::from(&b"xx"[..]);
        assert_eq!(write_frame(&mut out, 10, |b| b.put_slice(b"abc")), Ok(3));
        assert_eq!(&out[..], b"xx\0\0\0\x03abc");
        assert_eq!(
            write_frame(&mut out, 10, |b| b.put_slice(&[0; 11])),
            Err(EncodeError::FrameTooLarge { len: 11, max: 10 })
        );
        assert_eq!(&out[..], b"xx\0\0\0\x03abc");
        assert_eq!(
            write_frame(&mut out, 10, |_| {}),
            Err(EncodeError::ZeroLength)
        );
        assert_eq!(
            write_frame(&mut out, 10, |b| b.truncate(0)),
            Err(EncodeError::BodyTruncated)
        );
        assert_eq!(&out[..], b"");
    }

    #[test]
    fn max_outbound_frame_is_inclusive() {
        let mut out = BytesMut::new();
        let max = DEFAULT_MAX_OUTBOUND_FRAME;
        assert_eq!(write_frame(&mut out, max, |b| b.put_bytes(0, max)), Ok(max));
        out.clear();
        assert!(write_frame(&mut out, max, |b| b.put_bytes(0, max + 1)).is_err());
        assert!(out.is_empty());
    }
}
