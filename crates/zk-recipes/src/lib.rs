//! # zk-recipes
//!
//! Coordination recipes on [`zk_client`], built for sessions that survive failover.
//!
//! - [`Mutex`]: a distributed lock with the node layout of Curator's `InterProcessMutex`.
//! - [`LeaderLatch`]: leader election with the node layout of Curator's `LeaderLatch`.
//!
//! Both create their node with [`Client::create_protected`](zk_client::Client::create_protected)
//! (`_c_<uuid>-lock-<seq>` / `_c_<uuid>-latch-<seq>`), so a create whose answer is lost in a
//! failover is found instead of duplicated, and processes using Curator recognise the nodes.
//!
//! ## What "held" means across a failover
//!
//! A ZooKeeper lock is held by a *session*: its ephemeral node lives as long as the session.
//! This client keeps the session through a failover, so the recipes follow the session, not
//! the connection ([`Hold`]):
//!
//! | session | [`Hold`] | meaning |
//! |---|---|---|
//! | connected | `Held` | the node exists and this session owns it |
//! | disconnected, for less than `in_doubt_after` | `Held` | a failover in progress: a pause |
//! | disconnected for longer | `InDoubt` | the session may expire before it is back: stop acting as holder until it is `Held` again |
//! | expired (server or local), closed, taken over; the node deleted | `Lost` | for good: another process may hold it now |
//!
//! The servers expire a session only after its timeout `T` without hearing from it; a holder
//! is in doubt after the failure detector's `T/3` of silence plus `in_doubt_after` (default
//! `T/3`). With `T/3 + in_doubt_after + one-way latency < T` a `Held` lock is never held by
//! two processes at once. (Curator's `SUSPENDED`/`LOST` model, with
//! the difference that a failover does not end the lock — CURATOR-185, CURATOR-653.)
//!
//! ## Fencing
//!
//! A holder that was paused (GC, a frozen VM) can act after its lock is gone. The guards'
//! fenced operations ([`MutexGuard::fenced`]) run as a `multi` whose first operation checks
//! the lock node: once the node is gone the write fails with [`RecipeError::Lost`] and is
//! not applied.

#![forbid(unsafe_code)]

mod hold;
mod latch;
mod lock;

pub use crate::hold::Hold;
pub use crate::latch::{LatchState, LeaderLatch, LeaderLatchHandle};
pub use crate::lock::{Mutex, MutexGuard};

use std::time::Duration;

/// What the recipes can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    /// The lock or leadership is lost for good (see [`Hold::Lost`]); a fenced write was not
    /// applied.
    #[error("lost: the session ended or the node was deleted")]
    Lost,
    /// An error from the client.
    #[error(transparent)]
    Client(#[from] zk_client::Error),
}

/// The threshold after which a disconnected holder is in doubt, unless set: a third of the
/// negotiated session timeout (the detector's `T/3` of silence plus `T/3` leaves `T/3` of
/// margin before the servers could expire the session).
fn default_in_doubt_after(client: &zk_client::Client) -> Duration {
    client
        .negotiated_timeout()
        .map_or(Duration::from_secs(2), |t| t / 3)
}

/// The sequence number ZooKeeper appended to `node` after `marker` (`"lock-"`, `"latch-"`):
/// what Curator sorts by (`StandardLockInternalsDriver.fixForSorting`).
fn sequence<'a>(node: &'a str, marker: &str) -> &'a str {
    node.rfind(marker)
        .map_or(node, |i| &node[i + marker.len()..])
}

/// The children of `parent` named `…<marker><seq>`, sorted by sequence.
fn sorted(mut children: Vec<String>, marker: &str) -> Vec<String> {
    children.retain(|c| c.contains(marker));
    children.sort_by(|a, b| sequence(a, marker).cmp(sequence(b, marker)));
    children
}

/// A node this process owns (a lock contender's, a latch participant's): fenced transactions
/// check it first; dropping it deletes it in the background (the session's end does anyway).
#[derive(Debug)]
struct OwnedNode {
    client: zk_client::Client,
    path: String,
}

impl OwnedNode {
    /// Runs `ops` as one transaction after a `check` that the node exists: nothing applies
    /// once it is gone. Returns the results of `ops`.
    async fn fenced(
        &self,
        ops: Vec<zk_client::Op>,
    ) -> Result<Vec<zk_client::OpResult>, RecipeError> {
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(zk_client::Op::Check {
            path: self.path.clone(),
            version: -1,
        });
        all.extend(ops);
        match self.client.multi(all).await {
            Ok(mut results) => {
                results.remove(0);
                Ok(results)
            }
            Err(zk_client::Error::MultiFailed { index: 0, .. }) => Err(RecipeError::Lost),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the node now (deciding the outcome across a failover).
    async fn delete(mut self) -> Result<(), RecipeError> {
        let path = std::mem::take(&mut self.path);
        self.client.delete_idempotent(&path, -1).await?;
        Ok(())
    }
}

impl Drop for OwnedNode {
    fn drop(&mut self) {
        if self.path.is_empty() {
            return;
        }
        let client = self.client.clone();
        let path = std::mem::take(&mut self.path);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.delete_idempotent(&path, -1).await;
            });
        }
    }
}

/// `parent/child`.
fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Creates this process's node `<parent>/_c_<uuid>-<marker><seq>` (ephemeral sequential,
/// protected), with `parent` and its missing parents; returns its path.
async fn join_queue(
    client: &zk_client::Client,
    parent: &str,
    marker: &str,
    data: bytes::Bytes,
) -> Result<String, zk_client::Error> {
    ensure_path(client, parent).await?;
    let open = zk_client::acl::open_unsafe();
    let mode = zk_client::CreateMode::EphemeralSequential;
    client
        .create_protected(&join(parent, marker), data, &open, mode)
        .await
}

/// Creates `path` and its missing parents as persistent nodes (empty data).
async fn ensure_path(client: &zk_client::Client, path: &str) -> Result<(), zk_client::Error> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client
            .create_idempotent(
                &at,
                bytes::Bytes::new(),
                &zk_client::acl::open_unsafe(),
                zk_client::CreateMode::Persistent,
            )
            .await
        {
            Ok(_) | Err(zk_client::Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_sort_by_their_sequence_whatever_the_protection_prefix() {
        let nodes = vec![
            "_c_ffffffff-0000-4000-8000-000000000000-lock-0000000003".to_owned(),
            "_c_00000000-0000-4000-8000-000000000000-lock-0000000010".to_owned(),
            "lock-0000000001".to_owned(),
            "unrelated".to_owned(),
        ];
        let s = sorted(nodes, "lock-");
        assert_eq!(s.len(), 3);
        assert!(s[0].ends_with("0001") && s[1].ends_with("0003") && s[2].ends_with("0010"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/l", "a"), "/l/a");
    }
}
