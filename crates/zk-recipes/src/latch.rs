//! Leader election with Curator's `LeaderLatch` node layout.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use zk_client::{Client, Op, OpResult};

use crate::hold::{self, Follower, Hold};
use crate::{OwnedNode, RecipeError, default_in_doubt_after, join, join_queue, sorted};

/// Curator's latch node name (`LeaderLatch`: `latch-`).
const LATCH_NAME: &str = "latch-";

/// Where a participant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LatchState {
    /// Waiting: another participant leads.
    Candidate,
    /// Leading (the session is connected, or disconnected for less than the in-doubt
    /// threshold: a failover is a pause).
    Leader,
    /// Was leading, and the session has been disconnected for longer than the threshold:
    /// stop leading until it is `Leader` again.
    InDoubt,
    /// Out of the election for good: the session ended or the node was deleted.
    Lost,
}

/// One participant of a leader election at a path: an ephemeral sequential node
/// `<path>/_c_<uuid>-latch-<seq>` holding its id (Curator's `LeaderLatch` layout); the
/// lowest sequence leads, each other participant watches only its predecessor.
#[derive(Debug, Clone)]
pub struct LeaderLatch {
    client: Client,
    path: String,
    id: Bytes,
    in_doubt_after: Option<Duration>,
}

impl LeaderLatch {
    /// A participant with `id` (stored in its node) in the election at `path`.
    #[must_use]
    pub fn new(client: Client, path: &str, id: impl Into<Bytes>) -> Self {
        Self {
            client,
            path: path.to_owned(),
            id: id.into(),
            in_doubt_after: None,
        }
    }

    /// How long the session may be disconnected before a leader is [`LatchState::InDoubt`]
    /// (default: a third of the negotiated session timeout). Keep `T/3 + in_doubt_after`
    /// below the session timeout `T`.
    #[must_use]
    pub const fn in_doubt_after(mut self, d: Duration) -> Self {
        self.in_doubt_after = Some(d);
        self
    }

    /// Joins the election; the handle follows this participant's state.
    ///
    /// # Errors
    /// Client errors while creating the node.
    pub async fn start(&self) -> Result<LeaderLatchHandle, RecipeError> {
        let node = join_queue(&self.client, &self.path, LATCH_NAME, self.id.clone()).await?;
        let (tx, rx) = watch::channel(LatchState::Candidate);
        let task = tokio::spawn(run(
            self.client.clone(),
            self.path.clone(),
            node.clone(),
            self.in_doubt_after
                .unwrap_or_else(|| default_in_doubt_after(&self.client)),
            tx,
        ));
        Ok(LeaderLatchHandle {
            node: OwnedNode {
                client: self.client.clone(),
                path: node,
            },
            state: rx,
            task: Follower(task),
        })
    }
}

/// Candidate until first, then leader for as long as the node lives.
async fn run(
    client: Client,
    path: String,
    node: String,
    in_doubt_after: Duration,
    tx: watch::Sender<LatchState>,
) {
    let name = node.rsplit('/').next().unwrap_or(&node).to_owned();
    let mut states = client.state_stream();
    loop {
        if states.borrow_and_update().state.is_terminal() {
            tx.send_replace(LatchState::Lost);
            return;
        }
        let children = match client.get_children(&path).await {
            Ok(c) => sorted(c, LATCH_NAME),
            Err(e) if e.is_terminal() => {
                tx.send_replace(LatchState::Lost);
                return;
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(i) = children.iter().position(|c| *c == name) else {
            tx.send_replace(LatchState::Lost);
            return;
        };
        if i == 0 {
            break;
        }
        let predecessor = join(&path, &children[i - 1]);
        let Ok((Some(_), watcher)) = client.exists_watch(&predecessor).await else {
            continue;
        };
        tokio::select! {
            _ = watcher => {}
            _ = states.changed() => {}
        }
    }
    // First: leader while the node lives (sequence numbers only grow, so nobody can get
    // ahead of it), following the session.
    tracing::info!(node = %node, "leader");
    let (mut hold, _follower) = hold::follow(client, node, in_doubt_after);
    loop {
        let state = match *hold.borrow_and_update() {
            Hold::Held => LatchState::Leader,
            Hold::InDoubt => LatchState::InDoubt,
            _ => LatchState::Lost,
        };
        tx.send_replace(state);
        if state == LatchState::Lost || hold.changed().await.is_err() {
            tx.send_replace(LatchState::Lost);
            return;
        }
    }
}

/// A participant in the election; dropping it leaves the election (in the background).
#[derive(Debug)]
pub struct LeaderLatchHandle {
    // Declared first: the task stops before the node is deleted.
    task: Follower,
    node: OwnedNode,
    state: watch::Receiver<LatchState>,
}

impl LeaderLatchHandle {
    /// Where this participant stands.
    #[must_use]
    pub fn state(&self) -> LatchState {
        *self.state.borrow()
    }

    /// Changes of [`LeaderLatchHandle::state`].
    #[must_use]
    pub fn state_stream(&self) -> watch::Receiver<LatchState> {
        self.state.clone()
    }

    /// Waits until this participant leads.
    ///
    /// # Errors
    /// [`RecipeError::Lost`] if it is out of the election first.
    pub async fn wait_leader(&self) -> Result<(), RecipeError> {
        let mut rx = self.state.clone();
        match rx
            .wait_for(|s| matches!(s, LatchState::Leader | LatchState::Lost))
            .await
        {
            Ok(s) if *s == LatchState::Leader => Ok(()),
            _ => Err(RecipeError::Lost),
        }
    }

    /// This participant's node (`<path>/_c_<uuid>-latch-<seq>`).
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node.path
    }

    /// Runs `ops` as one transaction that applies only while this participant leads: the
    /// leader's node is checked first, and once it led, it leads for as long as the node
    /// exists.
    ///
    /// # Errors
    /// [`RecipeError::Lost`] when not leading (nothing applied); the client's errors.
    pub async fn fenced(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, RecipeError> {
        if !matches!(self.state(), LatchState::Leader | LatchState::InDoubt) {
            return Err(RecipeError::Lost);
        }
        self.node.fenced(ops).await
    }

    /// Leaves the election: deletes the node (the next participant leads).
    ///
    /// # Errors
    /// Client errors; the session's end removes the node anyway.
    pub async fn close(self) -> Result<(), RecipeError> {
        let Self { task, node, .. } = self;
        drop(task);
        node.delete().await
    }
}
