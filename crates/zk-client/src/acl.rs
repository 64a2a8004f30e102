//! ACL helpers: the usual ACL lists and the `digest` scheme's id builder.
//!
//! ```
//! use zk_client::acl::{self, IdExt};
//! use zk_client::{Acl, Id};
//!
//! // The id the server derives for `addauth digest alice:secret`.
//! let id = Id::digest("alice", "secret");
//! assert_eq!(id.scheme, "digest");
//! assert!(id.id.starts_with("alice:"));
//! let acl = vec![Acl { perms: zk_client::perms::ALL, id }];
//! assert_eq!(acl::open_unsafe()[0].id.scheme, "world");
//! # let _ = acl;
//! ```

use zk_proto::{Acl, Id, perms};

/// `world:anyone` with every permission (`OPEN_ACL_UNSAFE`).
#[must_use]
pub fn open_unsafe() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// `world:anyone` with read permission only (`READ_ACL_UNSAFE`).
#[must_use]
pub fn read_unsafe() -> Vec<Acl> {
    Acl::read_unsafe()
}

/// Every permission for the identities the session authenticated with (`CREATOR_ALL_ACL`).
/// The session must have added auth first, or the server answers `InvalidAcl`.
#[must_use]
pub fn creator_all() -> Vec<Acl> {
    Acl::creator_all()
}

/// Every permission for one `digest` user: what `setAcl /path digest:user:hash:cdrwa` sets.
#[must_use]
pub fn digest_all(user: &str, password: &str) -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: digest_id(user, password),
    }]
}

/// The `digest` id for `user` and `password`: `user:base64(sha1("user:password"))`, the
/// form the server derives from an `addauth digest user:password`.
#[must_use]
pub fn digest_id(user: &str, password: &str) -> Id {
    let digest = sha1(format!("{user}:{password}").as_bytes());
    Id::new("digest", format!("{user}:{}", base64(&digest)))
}

/// Adds `Id::digest(user, password)` to [`Id`] (an extension trait, since `Id` lives in
/// `zk-proto`).
pub trait IdExt {
    /// The `digest` id for `user` and `password`; see [`digest_id`].
    fn digest(user: &str, password: &str) -> Self;
}

impl IdExt for Id {
    fn digest(user: &str, password: &str) -> Self {
        digest_id(user, password)
    }
}

/// SHA-1 (FIPS 180-4). Used only to compute `digest` ids, which the server defines that way.
#[must_use]
pub(crate) fn sha1(input: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (input.len() as u64).wrapping_mul(8);
    let mut msg = Vec::with_capacity(input.len() + 72);
    msg.extend_from_slice(input);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    let mut w = [0u32; 80];
    for block in msg.chunks_exact(64) {
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
#[must_use]
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(b"The quick brown fox jumps over the lazy dog")),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&sha1(&million_a)),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
        // Lengths around the padding boundary.
        assert_eq!(
            hex(&sha1(&[b'a'; 55])),
            "c1c8bbdc22796e28c0e15163d20899b65621d65a"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 64])),
            "0098ba824b5c16427bd7a1122a5a442a25ec644d"
        );
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn digest_matches_zookeeper_documentation() {
        // base64(sha1("super:superpw")), checked with sha1sum | base64.
        assert_eq!(
            digest_id("super", "superpw").id,
            "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="
        );
        let id = Id::digest("alice", "secret");
        assert_eq!(id.scheme, "digest");
        assert_eq!(digest_all("alice", "secret")[0].id, id);
    }
}
