//! Layer 1: the Jute primitives and the [`Record`] trait.
//!
//! Jute is ZooKeeper's serialization format. On the wire everything is big-endian:
//!
//! | Jute type | Rust type | encoding |
//! |---|---|---|
//! | `int` | `i32` | 4 bytes |
//! | `long` | `i64` | 8 bytes |
//! | `boolean` | `bool` | 1 byte, `0` or `1` |
//! | `buffer` | [`Bytes`] / `Option<Bytes>` | `int` length, then the bytes; `-1` means null |
//! | `ustring` | `String` / `Option<String>` | `int` length, then UTF-8; `-1` means null |
//! | `vector<T>` | `Vec<T>` | `int` count, then the elements; `-1` means null |
//!
//! # Decisions
//!
//! * **Booleans are strict.** Java's `readBool` accepts any non-zero byte, but every Java writer
//!   emits `0` or `1`; this codec rejects anything else with [`DecodeError::InvalidBool`] so that
//!   decoding and re-encoding is always byte-exact.
//! * **Null.** Where null carries meaning (a node's data in a getData reply, the optional members
//!   of a reconfig request, a SASL reply token) the field is an `Option` and `-1` round-trips.
//!   Elsewhere a null buffer, string or vector decodes as empty, and encodes as length `0`.
//!   Lengths below `-1` are always [`DecodeError::NegativeLength`].
//! * **Strings are UTF-8**, strictly ([`DecodeError::InvalidUtf8`]; Java would substitute
//!   U+FFFD), with one tolerance: Java 3.8 *writes* a supplementary character (e.g. an emoji) as
//!   a CESU-8 surrogate pair, six bytes, and decoding accepts such a pair as the character it
//!   stands for. Encoding always writes standard UTF-8, which is what Java's reader expects (it
//!   turns CESU-8 into U+FFFD), so only strings with supplementary characters re-encode to
//!   different bytes than a Java writer produced.
//! * **Bounded allocation.** A length is checked against the remaining input before anything is
//!   allocated: a buffer or string must fit in the remaining bytes, and a vector count must not
//!   exceed `remaining / min_element_size` ([`Record::MIN_ENCODED_LEN`]). A vector reserves
//!   capacity for at most that many elements and at most 64 KiB up front; beyond that it grows
//!   only as elements actually decode. A malformed length therefore never causes an allocation
//!   larger than the input, which the [`FrameDecoder`](crate::FrameDecoder) bounds. (Decoded
//!   values can still be a few times larger in memory than on the wire, e.g. a list of empty
//!   strings: 24 bytes per 4-byte element.)
//! * **Zero copy.** Buffers are [`Bytes::split_to`] slices of the input.
//! * **Encoding cannot fail.** A length above `i32::MAX` cannot be represented; such a record
//!   cannot fit in any frame either, and [`write_frame`](crate::write_frame) rejects it.

use bytes::{Buf, BufMut, Bytes};

use crate::DecodeError;

/// A value with a Jute wire encoding.
///
/// Implemented by the primitives (`i32`, `i64`, `bool`, `String`, [`Bytes`], their `Option`s,
/// `Vec<T>`) and by every protocol record in this crate.
pub trait Record: Sized {
    /// The smallest number of bytes any value of this type encodes to.
    ///
    /// Used to bound vector counts before allocating; the default (0) is always correct but
    /// gives the weakest bound.
    const MIN_ENCODED_LEN: usize = 0;

    /// Appends the encoding of `self` to `buf`.
    ///
    /// `buf` must be able to grow (as [`bytes::BytesMut`] and `Vec<u8>` do): like every
    /// [`BufMut`] writer this panics if a fixed-capacity buffer runs out of space. Reserve
    /// [`encoded_len`](Self::encoded_len) bytes first to write without reallocating.
    fn encode<B: BufMut>(&self, buf: &mut B);

    /// Decodes one value from the front of `buf`, consuming exactly its encoding.
    ///
    /// Buffers are returned as zero-copy slices of `buf`. On error the amount consumed is
    /// unspecified.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] describing the first malformed field.
    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError>;

    /// The exact number of bytes [`encode`](Self::encode) writes.
    fn encoded_len(&self) -> usize;

    /// Encodes `self` into a new, exactly sized buffer.
    fn to_bytes(&self) -> Bytes {
        let mut out = bytes::BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out.freeze()
    }
}

/// Decodes one record that must span all of `bytes`.
///
/// # Errors
///
/// Any [`DecodeError`] of the record, or [`DecodeError::TrailingBytes`] if input is left over.
pub fn decode_exact<R: Record>(mut bytes: Bytes) -> Result<R, DecodeError> {
    let record = R::decode(&mut bytes)?;
    if bytes.has_remaining() {
        return Err(DecodeError::TrailingBytes {
            count: bytes.remaining(),
        });
    }
    Ok(record)
}

/// The most memory a vector decoder reserves before its elements have actually decoded.
const PREALLOC_BYTES: usize = 64 * 1024;

/// The length value Jute uses for a null buffer, string or vector.
pub const NULL_LENGTH: i32 = -1;

fn need(buf: &Bytes, needed: usize) -> Result<(), DecodeError> {
    if buf.remaining() < needed {
        Err(DecodeError::UnexpectedEnd {
            needed,
            remaining: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

/// Reads a length prefix: `Ok(None)` for null (`-1`), the length otherwise.
fn read_len(buf: &mut Bytes) -> Result<Option<usize>, DecodeError> {
    let len = i32::decode(buf)?;
    if len == NULL_LENGTH {
        return Ok(None);
    }
    usize::try_from(len)
        .map(Some)
        .map_err(|_| DecodeError::NegativeLength(len))
}

/// Reads a byte-length prefix and checks it against the remaining input.
fn read_byte_len(buf: &mut Bytes) -> Result<Option<usize>, DecodeError> {
    let len = read_len(buf)?;
    if let Some(len) = len
        && len > buf.remaining()
    {
        return Err(DecodeError::LengthTooLarge {
            len,
            remaining: buf.remaining(),
        });
    }
    Ok(len)
}

/// Writes a length prefix, saturating at `i32::MAX` (see the module docs).
fn write_len<B: BufMut>(buf: &mut B, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn read_str(buf: &mut Bytes, len: usize) -> Result<String, DecodeError> {
    let raw = buf.split_to(len);
    match std::str::from_utf8(&raw) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => decode_cesu8_pairs(&raw),
    }
}

/// Decodes UTF-8 in which supplementary characters may appear as CESU-8 surrogate pairs.
///
/// Java's `BinaryOutputArchive.writeString` (3.8) encodes each UTF-16 code unit on its own, so
/// a server echoing a path with, say, an emoji sends `ED A0 BD ED B8 80` instead of
/// `F0 9F 98 80`. Such a pair decodes to the character it stands for. Everything else must be
/// valid UTF-8; a lone surrogate is [`DecodeError::InvalidUtf8`].
fn decode_cesu8_pairs(mut rest: &[u8]) -> Result<String, DecodeError> {
    let mut out = String::with_capacity(rest.len());
    loop {
        let valid = match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return Ok(out);
            }
            Err(e) => e.valid_up_to(),
        };
        let (good, bad) = rest.split_at(valid);
        out.push_str(std::str::from_utf8(good).map_err(|_| DecodeError::InvalidUtf8)?);
        let Some(
            &[
                0xed,
                h1 @ 0xa0..=0xaf,
                h2 @ 0x80..=0xbf,
                0xed,
                l1 @ 0xb0..=0xbf,
                l2 @ 0x80..=0xbf,
            ],
        ) = bad.get(..6)
        else {
            return Err(DecodeError::InvalidUtf8);
        };
        let high = (u32::from(h1 & 0x0f) << 6) | u32::from(h2 & 0x3f);
        let low = (u32::from(l1 & 0x0f) << 6) | u32::from(l2 & 0x3f);
        let c = char::from_u32(0x10000 + (high << 10) + low).ok_or(DecodeError::InvalidUtf8)?;
        out.push(c);
        rest = &bad[6..];
    }
}

impl Record for i32 {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(*self);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        need(buf, 4)?;
        Ok(buf.get_i32())
    }

    fn encoded_len(&self) -> usize {
        4
    }
}

impl Record for i64 {
    const MIN_ENCODED_LEN: usize = 8;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i64(*self);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        need(buf, 8)?;
        Ok(buf.get_i64())
    }

    fn encoded_len(&self) -> usize {
        8
    }
}

impl Record for bool {
    const MIN_ENCODED_LEN: usize = 1;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(u8::from(*self));
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        need(buf, 1)?;
        match buf.get_u8() {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidBool(other)),
        }
    }

    fn encoded_len(&self) -> usize {
        1
    }
}

/// A Jute `buffer`; null decodes as empty.
impl Record for Bytes {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        write_len(buf, self.len());
        buf.put_slice(self);
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(Option::<Self>::decode(buf)?.unwrap_or_default())
    }

    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

/// A nullable Jute `buffer`: `None` is length `-1`.
impl Record for Option<Bytes> {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            Some(bytes) => bytes.encode(buf),
            None => buf.put_i32(NULL_LENGTH),
        }
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(read_byte_len(buf)?.map(|len| buf.split_to(len)))
    }

    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, Bytes::len)
    }
}

/// A Jute `ustring`; null decodes as empty.
impl Record for String {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        write_len(buf, self.len());
        buf.put_slice(self.as_bytes());
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(Option::<Self>::decode(buf)?.unwrap_or_default())
    }

    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

/// A nullable Jute `ustring`: `None` is length `-1`.
impl Record for Option<String> {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            Some(s) => s.encode(buf),
            None => buf.put_i32(NULL_LENGTH),
        }
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        match read_byte_len(buf)? {
            Some(len) => read_str(buf, len).map(Some),
            None => Ok(None),
        }
    }

    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, String::len)
    }
}

/// A Jute `vector`; null decodes as empty.
impl<T: Record> Record for Vec<T> {
    const MIN_ENCODED_LEN: usize = 4;

    fn encode<B: BufMut>(&self, buf: &mut B) {
        write_len(buf, self.len());
        for item in self {
            item.encode(buf);
        }
    }

    fn decode(buf: &mut Bytes) -> Result<Self, DecodeError> {
        let Some(count) = read_len(buf)? else {
            return Ok(Self::new());
        };
        // Every element takes at least one byte for the purpose of this bound, so a count of
        // zero-sized elements cannot make us loop more often than there are input bytes.
        let max_count = buf.remaining() / T::MIN_ENCODED_LEN.max(1);
        if count > max_count {
            return Err(DecodeError::LengthTooLarge {
                len: count,
                remaining: buf.remaining(),
            });
        }
        // Reserve up front only what the input can back, and at most PREALLOC_BYTES: a
        // malformed count then costs nothing, and larger vectors grow as elements decode.
        let prealloc = PREALLOC_BYTES / size_of::<T>().max(1);
        let mut items = Self::with_capacity(count.min(prealloc));
        for _ in 0..count {
            items.push(T::decode(buf)?);
        }
        Ok(items)
    }

    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Record::encoded_len).sum::<usize>()
    }
}

/// Defines a plain Jute record: a struct whose fields are encoded in declaration order.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl $crate::Record for $name {
            const MIN_ENCODED_LEN: usize = 0 $( + <$ty as $crate::Record>::MIN_ENCODED_LEN )*;

            #[allow(unused_variables, reason = "records without fields")]
            fn encode<B: ::bytes::BufMut>(&self, buf: &mut B) {
                $( $crate::Record::encode(&self.$field, buf); )*
            }

            #[allow(unused_variables, reason = "records without fields")]
            fn decode(buf: &mut ::bytes::Bytes) -> Result<Self, $crate::DecodeError> {
                // Struct expression fields are evaluated in source order, i.e. wire order.
                Ok(Self { $( $field: <$ty as $crate::Record>::decode(buf)?, )* })
            }

            fn encoded_len(&self) -> usize {
                0 $( + $crate::Record::encoded_len(&self.$field) )*
            }
        }
    };
}
pub(crate) use record;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_big_endian() {
        assert_eq!(0x0102_0304_i32.to_bytes().as_ref(), &[1, 2, 3, 4]);
        assert_eq!(
            (-2_i64).to_bytes().as_ref(),
            &[0xff; 7].iter().chain(&[0xfe]).copied().collect::<Vec<_>>()[..]
        );
        assert_eq!(true.to_bytes().as_ref(), &[1]);
    }

    #[test]
    fn bool_is_strict() {
        assert_eq!(
            decode_exact::<bool>(Bytes::from_static(&[2])),
            Err(DecodeError::InvalidBool(2))
        );
    }

    #[test]
    fn null_buffer_and_string() {
        let null = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_exact::<Option<Bytes>>(null.clone()), Ok(None));
        assert_eq!(decode_exact::<Bytes>(null.clone()), Ok(Bytes::new()));
        assert_eq!(decode_exact::<Option<String>>(null.clone()), Ok(None));
        assert_eq!(decode_exact::<Vec<String>>(null), Ok(Vec::new()));
        assert_eq!(None::<Bytes>.to_bytes(), Bytes::from_static(&[0xff; 4]));
    }

    #[test]
    fn negative_lengths_are_rejected() {
        let minus2 = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(
            decode_exact::<Bytes>(minus2.clone()),
            Err(DecodeError::NegativeLength(-2))
        );
        assert_eq!(
            decode_exact::<String>(minus2.clone()),
            Err(DecodeError::NegativeLength(-2))
        );
        assert_eq!(
            decode_exact::<Vec<i32>>(minus2),
            Err(DecodeError::NegativeLength(-2))
        );
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        // A vector claiming i32::MAX strings in 4 bytes of input.
        let huge = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(
            decode_exact::<Vec<String>>(huge.clone()),
            Err(DecodeError::LengthTooLarge {
                len: i32::MAX as usize,
                remaining: 4
            })
        );
        assert_eq!(
            decode_exact::<Bytes>(huge),
            Err(DecodeError::LengthTooLarge {
                len: i32::MAX as usize,
                remaining: 4
            })
        );
        // Zero-sized elements are bounded by the input length too.
        let many_unit = Bytes::from_static(&[0, 0, 0, 5, 0, 0]);
        assert!(matches!(
            decode_exact::<Vec<crate::Empty>>(many_unit),
            Err(DecodeError::LengthTooLarge {
                len: 5,
                remaining: 2
            })
        ));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let bad = Bytes::from_static(&[0, 0, 0, 2, 0xc3, 0x28]);
        assert_eq!(decode_exact::<String>(bad), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn java_cesu8_surrogate_pairs_are_accepted() {
        // "/" U+1F600 as Java's BinaryOutputArchive writes it.
        let java = Bytes::from_static(&[0, 0, 0, 7, b'/', 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        let s = decode_exact::<String>(java).unwrap();
        assert_eq!(s, "/\u{1f600}");
        assert_eq!(&s.to_bytes()[4..], "/\u{1f600}".as_bytes());
        // Lone or reversed surrogates are still invalid.
        let lone = Bytes::from_static(&[0, 0, 0, 3, 0xed, 0xa0, 0x80]);
        assert_eq!(decode_exact::<String>(lone), Err(DecodeError::InvalidUtf8));
        let reversed = Bytes::from_static(&[0, 0, 0, 6, 0xed, 0xb8, 0x80, 0xed, 0xa0, 0xbd]);
        assert_eq!(
            decode_exact::<String>(reversed),
            Err(DecodeError::InvalidUtf8)
        );
        let max = Bytes::from_static(&[0, 0, 0, 6, 0xed, 0xaf, 0xbf, 0xed, 0xbf, 0xbf]);
        assert_eq!(decode_exact::<String>(max).unwrap(), "\u{10ffff}");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let extra = Bytes::from_static(&[0, 0, 0, 1, 9]);
        assert_eq!(
            decode_exact::<i32>(extra),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn truncated_input_reports_what_was_needed() {
        assert_eq!(
            decode_exact::<i64>(Bytes::from_static(&[1, 2, 3])),
            Err(DecodeError::UnexpectedEnd {
                needed: 8,
                remaining: 3
            })
        );
    }

    #[test]
    fn buffers_are_zero_copy() {
        let input = Bytes::from(vec![0, 0, 0, 3, b'a', b'b', b'c']);
        let range = input.as_ptr_range();
        let out = decode_exact::<Bytes>(input).unwrap();
        assert!(range.contains(&out.as_ptr()));
        assert_eq!(out, "abc");
    }
}
