//! A distributed lock with Curator's `InterProcessMutex` node layout.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use zk_client::{Client, Op, OpResult};

use crate::hold::{self, Follower, Hold};
use crate::{OwnedNode, RecipeError, default_in_doubt_after, join, join_queue, sorted};

/// Curator's lock node name (`LockInternals`: `lock-`).
const LOCK_NAME: &str = "lock-";

/// A distributed, non-reentrant lock at a path: each contender creates an ephemeral
/// sequential node `<path>/_c_<uuid>-lock-<seq>` (Curator's `InterProcessMutex` layout, so
/// Curator processes and these share one lock); the lowest sequence holds it, each other
/// contender watches only its predecessor.
///
/// ```no_run
/// # async fn demo(client: zk_client::Client) -> Result<(), zk_recipes::RecipeError> {
/// let lock = zk_recipes::Mutex::new(client, "/locks/orders");
/// let guard = lock.acquire().await?;
/// // … work; writes that must not outlive the lock go through the guard:
/// guard.fenced(vec![zk_client::Op::SetData {
///     path: "/orders/state".into(),
///     data: "done".into(),
///     version: -1,
/// }]).await?;
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mutex {
    client: Client,
    path: String,
    data: Bytes,
    in_doubt_after: Option<Duration>,
}

impl Mutex {
    /// A lock at `path` (created with its parents when missing).
    #[must_use]
    pub fn new(client: Client, path: &str) -> Self {
        Self {
            client,
            path: path.to_owned(),
            data: Bytes::new(),
            in_doubt_after: None,
        }
    }

    /// How long the session may be disconnected before a held lock is [`Hold::InDoubt`]
    /// (default: a third of the negotiated session timeout). Keep
    /// `T/3 + in_doubt_after` below the session timeout `T`.
    #[must_use]
    pub const fn in_doubt_after(mut self, d: Duration) -> Self {
        self.in_doubt_after = Some(d);
        self
    }

    fn doubt(&self) -> Duration {
        self.in_doubt_after
            .unwrap_or_else(|| default_in_doubt_after(&self.client))
    }

    /// Data stored in this contender's node (Curator stores the host's address).
    #[must_use]
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.data = data.into();
        self
    }

    /// Waits until the lock is held.
    ///
    /// # Errors
    /// Client errors ([`zk_client::Error::SessionExpired`], …); the contender's node is
    /// removed on every error.
    pub async fn acquire(&self) -> Result<MutexGuard, RecipeError> {
        self.acquire_until(None).await?.ok_or(RecipeError::Lost)
    }

    /// Waits at most `timeout` for the lock; `None` if it was not free by then.
    ///
    /// # Errors
    /// As [`Mutex::acquire`].
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<MutexGuard>, RecipeError> {
        self.acquire_until(Some(tokio::time::Instant::now() + timeout))
            .await
    }

    async fn acquire_until(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<MutexGuard>, RecipeError> {
        let node = join_queue(&self.client, &self.path, LOCK_NAME, self.data.clone()).await?;
        match self.wait_first(&node, deadline).await {
            Ok(true) => {
                let (state, follower) =
                    hold::follow(self.client.clone(), node.clone(), self.doubt());
                Ok(Some(MutexGuard {
                    follower: Some(follower),
                    node: OwnedNode {
                        client: self.client.clone(),
                        path: node,
                    },
                    state,
                }))
            }
            Ok(false) => {
                let _ = self.client.delete_idempotent(&node, -1).await;
                Ok(None)
            }
            Err(e) => {
                let _ = self.client.delete_idempotent(&node, -1).await;
                Err(e)
            }
        }
    }

    /// Waits until `node` is the first; `false` at the deadline.
    async fn wait_first(
        &self,
        node: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<bool, RecipeError> {
        let name = node.rsplit('/').next().unwrap_or(node);
        loop {
            let children = sorted(self.client.get_children(&self.path).await?, LOCK_NAME);
            let Some(i) = children.iter().position(|c| c == name) else {
                // Our node is gone: the session ended, or someone deleted it.
                return Err(RecipeError::Lost);
            };
            if i == 0 {
                return Ok(true);
            }
            let predecessor = join(&self.path, &children[i - 1]);
            let (stat, watcher) = self.client.exists_watch(&predecessor).await?;
            if stat.is_none() {
                continue;
            }
            match deadline {
                Some(at) => {
                    if tokio::time::timeout_at(at, watcher).await.is_err() {
                        return Ok(false);
                    }
                }
                None => {
                    let _ = watcher.await;
                }
            }
        }
    }
}

/// A held lock. Dropping it without [`MutexGuard::release`] releases in the background
/// (best effort); the session's end releases it in any case.
#[derive(Debug)]
pub struct MutexGuard {
    // Declared first: the follower stops before the node is deleted.
    follower: Option<Follower>,
    node: OwnedNode,
    state: watch::Receiver<Hold>,
}

impl MutexGuard {
    /// Whether the lock is still held (see [`Hold`]).
    #[must_use]
    pub fn hold(&self) -> Hold {
        *self.state.borrow()
    }

    /// Changes of [`MutexGuard::hold`].
    #[must_use]
    pub fn hold_stream(&self) -> watch::Receiver<Hold> {
        self.state.clone()
    }

    /// Resolves when the lock is lost for good.
    pub async fn lost(&self) {
        let mut rx = self.state.clone();
        let _ = rx.wait_for(|h| *h == Hold::Lost).await;
    }

    /// This holder's node (`<lock>/_c_<uuid>-lock-<seq>`).
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node.path
    }

    /// Runs `ops` as one transaction that applies only while this lock node exists (a
    /// `check` of it comes first): a holder that lost the lock — however long it was paused
    /// — cannot apply them. Returns the results of `ops`.
    ///
    /// # Errors
    /// [`RecipeError::Lost`] when the lock node is gone (nothing applied) or the hold is
    /// already [`Hold::Lost`]; otherwise the client's errors (a `multi` whose answer is lost
    /// in a failover is `ConnectionLoss { outcome_unknown: true }`).
    pub async fn fenced(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, RecipeError> {
        if self.hold() == Hold::Lost {
            return Err(RecipeError::Lost);
        }
        self.node.fenced(ops).await
    }

    /// Releases the lock (deletes the node, deciding the outcome across a failover).
    ///
    /// # Errors
    /// Client errors; the session's end releases the lock anyway.
    pub async fn release(mut self) -> Result<(), RecipeError> {
        self.follower = None;
        self.node.delete().await
    }
}
