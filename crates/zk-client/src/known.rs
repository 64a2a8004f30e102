//! Writes with a known outcome across a failover.
//!
//! A write whose connection dies before its answer arrives fails with
//! [`Error::ConnectionLoss { outcome_unknown: true }`](Error::ConnectionLoss): it may or may
//! not have been applied. The session survives the failover, so the servers can be asked
//! afterwards. These forms do that and return the real result instead:
//!
//! | call | how the outcome is decided after a lost answer | exact? |
//! |---|---|---|
//! | [`Client::create_protected`] | the name carries a random id (`_c_<uuid>-name`, Curator's layout); the parent's children are listed and the node found by its id — for ephemerals its owner must be this session (CURATOR-498) | yes |
//! | [`Client::create_idempotent`], ephemeral | the write is sent again; on `NodeExists` the node's owner must be this session and its data ours | yes |
//! | [`Client::create_idempotent`], persistent | as above, owner none and data ours | yes, unless another client created the same path with the same bytes at the same time |
//! | [`Client::set_data_idempotent`] (version ≥ 0) | sent again with the same expected version; on `BadVersion` the node must be at version + 1 with our bytes | yes, unless another client made the same change (same version, same bytes) at the same time |
//! | [`Client::delete_idempotent`] | sent again; `NoNode` means the node is gone | the end state: the node is gone, by this write or another |
//!
//! Why a re-sent write cannot apply twice: ZooKeeper applies a session's requests in order,
//! and a request the old server had not forwarded before the session moved is refused
//! (`SessionMoved`) — so when the session is back, the first attempt has either been applied
//! or never will be, and the second attempt sees which.
//!
//! What cannot be decided: an unversioned `set_data` (version −1: a second write of the same
//! bytes is indistinguishable from the first), a `multi`, and a sequential `create` without
//! protection. They keep `ConnectionLoss { outcome_unknown: true }`: never a guessed answer.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use zk_proto::Acl;

use crate::client::{Client, WriteCounters};
use crate::error::{Error, Result};
use crate::ops::CreateMode;
use zk_proto::Stat;

/// Curator's prefix of protected node names: `_c_<uuid>-<name>`.
pub const PROTECTED_PREFIX: &str = "_c_";

/// How the servers' state resolved writes whose answer was lost.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    applied: AtomicU64,
    sent_again: AtomicU64,
}

impl Resolved {
    pub(crate) fn snapshot(&self) -> WriteCounters {
        WriteCounters {
            applied: self.applied.load(Ordering::Relaxed),
            sent_again: self.sent_again.load(Ordering::Relaxed),
        }
    }

    /// A lost attempt turned out applied (`true`) or not (`false`, and was sent again).
    fn record(&self, applied: bool) {
        let c = if applied {
            &self.applied
        } else {
            &self.sent_again
        };
        c.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::write_resolved(applied);
    }
}

/// Whether `e` means the write may or may not have been applied (or was not sent at all):
/// ask the servers, once the session is back.
const fn lost(e: &Error) -> bool {
    matches!(e, Error::ConnectionLoss { .. })
}

/// A random (version 4) UUID, lowercase with dashes, as `java.util.UUID` prints it.
fn uuid_v4() -> String {
    let mut rng = zk_session::rng::Rng::new(zk_session::fresh_seed());
    let (a, b) = (rng.next_u64(), rng.next_u64());
    let a = (a & !0xf000) | 0x4000; // version 4
    let b = (b & !(0b11 << 62)) | (0b10 << 62); // variant 10
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// `path` split into its parent and last segment (`"/a/b"` → `("/a", "b")`).
fn split(path: &str) -> Result<(&str, &str)> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Ok(("/", &path[1..])),
        Some(i) if i + 1 < path.len() => Ok((&path[..i], &path[i + 1..])),
        _ => Err(Error::InvalidArgument {
            reason: "a protected create needs a path with a node name (\"/parent/name\")",
        }),
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

impl Client {
    /// Creates a node whose name carries a random id, so that after a connection loss the
    /// client can tell whether the create was applied: the node is `parent/_c_<uuid>-name`
    /// (plus the server's counter for sequential modes), the layout Curator's
    /// `withProtection()` uses, so Java and Rust processes recognise each other's nodes.
    /// Returns the created path. An ephemeral found after a loss must belong to this
    /// session (a node left by an earlier session is deleted and the create repeated).
    ///
    /// Use it for sequential nodes (locks, queues, elections), whose names cannot be
    /// predicted otherwise.
    ///
    /// # Errors
    /// As [`Client::create`], never `ConnectionLoss` while the session lives:
    /// [`Error::SessionExpired`] and the other terminal errors end it.
    pub async fn create_protected(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        let (parent, name) = split(path)?;
        let prefix = format!("{PROTECTED_PREFIX}{}-", uuid_v4());
        let protected = join(parent, &format!("{prefix}{name}"));
        let data = data.into();
        let mut was_lost = false;
        loop {
            match self.create(&protected, data.clone(), acl, mode).await {
                Err(e) if lost(&e) => {
                    if let Some(found) = self.find_protected(parent, &prefix, mode).await? {
                        self.resolved().record(true);
                        return Ok(found);
                    }
                    // Not applied: create again.
                    was_lost = true;
                }
                Ok(path) if was_lost => {
                    self.resolved().record(false);
                    return Ok(path);
                }
                other => return other,
            }
        }
    }

    /// The node `parent/<prefix>…` this session created, if any; an ephemeral one owned by
    /// another session is deleted (and `None` returned, so the create is repeated).
    async fn find_protected(
        &self,
        parent: &str,
        prefix: &str,
        mode: CreateMode,
    ) -> Result<Option<String>> {
        loop {
            let children = match self.get_children(parent).await {
                Err(e) if lost(&e) => continue,
                other => other?,
            };
            let Some(child) = children.into_iter().find(|c| c.starts_with(prefix)) else {
                return Ok(None);
            };
            let found = join(parent, &child);
            if !mode.is_ephemeral() {
                return Ok(Some(found));
            }
            let stat = match self.exists(&found).await {
                Err(e) if lost(&e) => continue,
                other => other?,
            };
            match stat {
                Some(s) if s.ephemeral_owner == self.session_id() => return Ok(Some(found)),
                Some(_) => {
                    tracing::warn!(path = %found, "protected node of another session: deleted");
                    match self.delete(&found, -1).await {
                        Ok(()) | Err(Error::NoNode) => return Ok(None),
                        Err(e) if lost(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                None => return Ok(None),
            }
        }
    }

    /// Creates a node at a known path and, after a connection loss, decides by the servers'
    /// state whether this create was applied: sent again, a `NodeExists` answer counts as
    /// success when the node holds these bytes and (for ephemerals) belongs to this session.
    /// Sequential modes are refused: use [`Client::create_protected`].
    ///
    /// # Errors
    /// As [`Client::create`]; [`Error::NodeExists`] when the node is someone else's;
    /// [`Error::InvalidArgument`] for sequential modes.
    pub async fn create_idempotent(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        if mode.is_sequential() {
            return Err(Error::InvalidArgument {
                reason: "a sequential create cannot be made idempotent: use create_protected",
            });
        }
        let data = data.into();
        let owner = if mode.is_ephemeral() {
            self.session_id()
        } else {
            0
        };
        self.resolve(
            || self.create(path, data.clone(), acl, mode),
            |e| matches!(e, Error::NodeExists),
            || async {
                let (current, stat) = self.get_data(path).await?;
                Ok((current == data && stat.ephemeral_owner == owner).then(|| path.to_owned()))
            },
        )
        .await
    }

    /// `setData` with an expected version, whose outcome is decided after a connection loss:
    /// sent again with the same version; `BadVersion` then counts as success when the node is
    /// at `version + 1` holding these bytes (the first attempt was applied). Returns the
    /// node's Stat after the write.
    ///
    /// # Errors
    /// As [`Client::set_data`]; [`Error::InvalidArgument`] for version −1 (an unversioned
    /// write cannot be decided).
    pub async fn set_data_idempotent(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: i32,
    ) -> Result<Stat> {
        if version < 0 {
            return Err(Error::InvalidArgument {
                reason: "an unversioned set_data cannot be made idempotent: pass the expected version",
            });
        }
        let data = data.into();
        self.resolve(
            || self.set_data(path, data.clone(), version),
            |e| matches!(e, Error::BadVersion),
            || async {
                let (current, stat) = self.get_data(path).await?;
                Ok((stat.version == version.wrapping_add(1) && current == data).then_some(stat))
            },
        )
        .await
    }

    /// `delete` whose outcome is decided after a connection loss: sent again; `NoNode` then
    /// means the node is gone, which is what was asked.
    ///
    /// # Errors
    /// As [`Client::delete`].
    pub async fn delete_idempotent(&self, path: &str, version: i32) -> Result<()> {
        self.resolve(
            || self.delete(path, version),
            |e| matches!(e, Error::NoNode),
            || async { Ok(Some(())) },
        )
        .await
    }

    /// Sends `write` until it is answered. After a lost answer, an answer that `conflict`
    /// recognises (the write meeting its own earlier effect) is decided by `applied`, which
    /// reads the servers' state: `Some` — the lost attempt had been applied; `None` — a
    /// real conflict, returned as such. A success after a loss means the lost attempt had
    /// not been applied.
    async fn resolve<T, W, A>(
        &self,
        mut write: impl FnMut() -> W,
        conflict: impl Fn(&Error) -> bool,
        mut applied: impl FnMut() -> A,
    ) -> Result<T>
    where
        W: Future<Output = Result<T>>,
        A: Future<Output = Result<Option<T>>>,
    {
        let mut was_lost = false;
        loop {
            match write().await {
                Err(e) if lost(&e) => was_lost = true,
                Ok(v) if was_lost => {
                    self.resolved().record(false);
                    return Ok(v);
                }
                Err(e) if was_lost && conflict(&e) => match applied().await {
                    // The read was lost too: ask again (the write meets its effect again).
                    Err(e2) if lost(&e2) => {}
                    Err(e2) => return Err(e2),
                    Ok(Some(v)) => {
                        self.resolved().record(true);
                        return Ok(v);
                    }
                    Ok(None) => return Err(e),
                },
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_javas() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36, "{u}");
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "version 4: {u}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "variant: {u}"
        );
        assert!(
            u.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(uuid_v4(), u);
    }

    #[test]
    fn paths_split_into_parent_and_name() {
        assert_eq!(split("/a").unwrap(), ("/", "a"));
        assert_eq!(split("/a/b/lock-").unwrap(), ("/a/b", "lock-"));
        assert!(split("/").is_err());
        assert!(split("/a/").is_err());
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
