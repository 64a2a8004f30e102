//! ZooKeeper path validation and the [`Chroot`] type.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid ZooKeeper node path.
///
/// The rules are those of the server's `PathUtils.validatePath`; see [`validate_path`].
/// Every `offset` is a byte offset into the path that was checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is the empty string.
    #[error("path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// Two consecutive `/`: a node name is empty.
    #[error("empty node name (two consecutive '/') at byte {offset}")]
    EmptySegment {
        /// Byte offset of the second `/`.
        offset: usize,
    },
    /// A node name is `.` or `..`; ZooKeeper paths are never relative.
    #[error("relative node name ('.' or '..') at byte {offset}")]
    RelativeSegment {
        /// Byte offset of the start of the `.` or `..` segment.
        offset: usize,
    },
    /// The path ends with `/` and is not the root `/`.
    #[error("path must not end with '/'")]
    TrailingSlash,
    /// The path contains a NUL character.
    #[error("NUL character at byte {offset}")]
    NulCharacter {
        /// Byte offset of the NUL.
        offset: usize,
    },
    /// The path contains a character the server refuses.
    #[error("character {ch:?} at byte {offset} is not allowed in a ZooKeeper path")]
    ForbiddenCharacter {
        /// Byte offset of the first byte of the character.
        offset: usize,
        /// The offending character.
        ch: char,
    },
}

/// Checks `path` against ZooKeeper's node-path rules (the server's `PathUtils.validatePath`).
///
/// A valid path:
/// - is not empty and starts with `/`;
/// - is the root `/`, or does not end with `/`;
/// - has no empty node name (`//`) and no node name `.` or `..`;
/// - contains no NUL and none of the code points the server forbids: U+0001–U+001F,
///   U+007F–U+009F, U+E000–U+F8FF, U+FFF0–U+FFFF, and every code point above U+FFFF.
///
/// The last rule mirrors the Java check, which runs on UTF-16 code units and forbids
/// U+D800–U+F8FF: that range contains the surrogates, so every character outside the Basic
/// Multilingual Plane (emoji, for instance) is refused by the server.
///
/// Checks run in the server's order (empty, leading `/`, trailing `/`, then left to right), so
/// the error reported is the one the server would report.
///
/// ```
/// use zk_connstr::{validate_path, PathError};
///
/// assert_eq!(validate_path("/app/config"), Ok(()));
/// assert_eq!(validate_path("/"), Ok(()));
/// assert_eq!(validate_path("/app/"), Err(PathError::TrailingSlash));
/// assert_eq!(validate_path("/a//b"), Err(PathError::EmptySegment { offset: 3 }));
/// assert_eq!(validate_path("/a/../b"), Err(PathError::RelativeSegment { offset: 3 }));
/// ```
pub fn validate_path(path: &str) -> Result<(), PathError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(if path.is_empty() {
            PathError::Empty
        } else {
            PathError::NotAbsolute
        });
    };
    if rest.is_empty() {
        return Ok(());
    }
    if rest.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    let mut start = 1;
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(PathError::EmptySegment { offset: start });
        }
        for (i, ch) in segment.char_indices() {
            if ch == '\0' {
                return Err(PathError::NulCharacter { offset: start + i });
            }
            if is_forbidden(ch) {
                return Err(PathError::ForbiddenCharacter {
                    offset: start + i,
                    ch,
                });
            }
        }
        if segment == "." || segment == ".." {
            return Err(PathError::RelativeSegment { offset: start });
        }
        start += segment.len() + 1;
    }
    Ok(())
}

/// The code points `PathUtils.validatePath` refuses (NUL is reported separately).
fn is_forbidden(ch: char) -> bool {
    matches!(ch,
        '\u{1}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}'
        | '\u{10000}'..)
}

/// Why a string cannot be a [`Chroot`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ChrootError {
    /// `/` is the absence of a chroot, not a chroot: use `None`.
    #[error("\"/\" is not a chroot (it means no chroot)")]
    Root,
    /// The path breaks ZooKeeper's path rules.
    #[error(transparent)]
    Invalid(#[from] PathError),
    /// The path contains a comma, which a connection string cannot carry after the hosts.
    #[error("comma at byte {offset}: a chroot in a connection string cannot contain ','")]
    Comma {
        /// Byte offset of the comma.
        offset: usize,
    },
    /// The path ends with a space, which a connection string trims.
    #[error("a chroot cannot end with whitespace (connection strings are trimmed)")]
    TrailingWhitespace,
}

/// A chroot: the path every client path is relative to, as in `host:2181/app`.
///
/// Always a valid ZooKeeper path (see [`validate_path`]) other than `/`, with no `,` and no
/// trailing whitespace, so that it can always be written back into a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Chroot(String);

impl Chroot {
    /// Validates `path` and makes it a chroot.
    ///
    /// ```
    /// use zk_connstr::{Chroot, ChrootError};
    ///
    /// assert_eq!(Chroot::new("/app").unwrap().as_str(), "/app");
    /// assert_eq!(Chroot::new("/"), Err(ChrootError::Root));
    /// assert!(Chroot::new("app").is_err());
    /// ```
    pub fn new(path: &str) -> Result<Self, ChrootError> {
        validate_path(path)?;
        if path == "/" {
            return Err(ChrootError::Root);
        }
        if let Some(offset) = path.find(',') {
            return Err(ChrootError::Comma { offset });
        }
        if path.ends_with(|c: char| c.is_ascii_whitespace()) {
            return Err(ChrootError::TrailingWhitespace);
        }
        Ok(Self(path.to_owned()))
    }

    /// Wraps a path the parser has already validated.
    pub(crate) fn from_validated(path: &str) -> Self {
        Self(path.to_owned())
    }

    /// The chroot path, e.g. `/app`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The server-side path for the client path `path`.
    ///
    /// `path` should already be a valid absolute path (check it with [`validate_path`]);
    /// the root `/` maps to the chroot itself.
    ///
    /// ```
    /// let chroot = zk_connstr::Chroot::new("/app").unwrap();
    /// assert_eq!(chroot.prefix("/"), "/app");
    /// assert_eq!(chroot.prefix("/a/b"), "/app/a/b");
    /// ```
    #[must_use]
    pub fn prefix(&self, path: &str) -> String {
        if path == "/" || path.is_empty() {
            return self.0.clone();
        }
        let mut out = String::with_capacity(self.0.len() + path.len());
        out.push_str(&self.0);
        out.push_str(path);
        out
    }

    /// The client path for the server-side path `server_path`: the inverse of
    /// [`prefix`](Self::prefix).
    ///
    /// Returns `None` when `server_path` is not the chroot or below it (`/application` is
    /// not below `/app`). The chroot itself maps to `/`.
    ///
    /// ```
    /// let chroot = zk_connstr::Chroot::new("/app").unwrap();
    /// assert_eq!(chroot.strip("/app"), Some("/"));
    /// assert_eq!(chroot.strip("/app/a/b"), Some("/a/b"));
    /// assert_eq!(chroot.strip("/application"), None);
    /// assert_eq!(chroot.strip("/other"), None);
    /// ```
    #[must_use]
    pub fn strip<'a>(&self, server_path: &'a str) -> Option<&'a str> {
        let rest = server_path.strip_prefix(self.0.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }
}

impl fmt::Display for Chroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Chroot {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Chroot {
    type Err = ChrootError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges_match_the_server() {
        for ok in [
            'a', ' ', '~', '\u{a0}', 'é', '\u{d7ff}', '\u{f900}', '\u{ffef}',
        ] {
            assert!(!is_forbidden(ok), "{ok:?}");
        }
        for bad in [
            '\u{1}',
            '\u{1f}',
            '\u{7f}',
            '\u{9f}',
            '\u{e000}',
            '\u{f8ff}',
            '\u{fff0}',
            '\u{ffff}',
            '\u{10000}',
            '\u{1f600}',
            '\u{10ffff}',
        ] {
            assert!(is_forbidden(bad), "{bad:?}");
        }
    }

    #[test]
    fn validate_path_errors() {
        assert_eq!(validate_path(""), Err(PathError::Empty));
        assert_eq!(validate_path("a"), Err(PathError::NotAbsolute));
        assert_eq!(validate_path("//"), Err(PathError::TrailingSlash));
        assert_eq!(validate_path("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(
            validate_path("//a"),
            Err(PathError::EmptySegment { offset: 1 })
        );
        assert_eq!(
            validate_path("/."),
            Err(PathError::RelativeSegment { offset: 1 })
        );
        assert_eq!(
            validate_path("/a/.."),
            Err(PathError::RelativeSegment { offset: 3 })
        );
        assert_eq!(validate_path("/a/..."), Ok(()));
        assert_eq!(validate_path("/.a/a./..b"), Ok(()));
        assert_eq!(
            validate_path("/ab\0"),
            Err(PathError::NulCharacter { offset: 3 })
        );
        assert_eq!(
            validate_path("/é\u{1}"),
            Err(PathError::ForbiddenCharacter {
                offset: 3,
                ch: '\u{1}'
            })
        );
        assert_eq!(
            validate_path("/x/😀"),
            Err(PathError::ForbiddenCharacter {
                offset: 3,
                ch: '😀'
            })
        );
        // The trailing slash is checked before the characters, as on the server.
        assert_eq!(validate_path("/a\0/"), Err(PathError::TrailingSlash));
    }

    #[test]
    fn chroot_rules() {
        assert_eq!(Chroot::new("/"), Err(ChrootError::Root));
        assert_eq!(Chroot::new(""), Err(ChrootError::Invalid(PathError::Empty)));
        assert_eq!(Chroot::new("/a,b"), Err(ChrootError::Comma { offset: 2 }));
        assert_eq!(Chroot::new("/a "), Err(ChrootError::TrailingWhitespace));
        assert_eq!(Chroot::new("/a b").map(|c| c.0), Ok("/a b".to_owned()));
        assert_eq!(
            "/x".parse::<Chroot>().map(|c| c.to_string()),
            Ok("/x".into())
        );
    }

    #[test]
    fn prefix_and_strip_are_inverse() {
        let c = Chroot::new("/app/x").unwrap();
        for p in ["/", "/a", "/a/b", "/x"] {
            assert_eq!(c.strip(&c.prefix(p)), Some(p));
        }
        assert_eq!(c.strip("/app"), None);
        assert_eq!(c.strip("/app/xy"), None);
        assert_eq!(c.strip(""), None);
    }
}
