//! Following a lock or leadership from the session: held, in doubt, lost.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zk_client::{Client, EventType, SessionState};

/// Whether a lock (or leadership) is held, as far as this process can know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hold {
    /// Held: the session is connected, or has been disconnected for less than the
    /// in-doubt threshold (a failover in progress).
    Held,
    /// The session has been disconnected for longer than the threshold: it may expire before
    /// it is back. Act as if not holding until it is `Held` again.
    InDoubt,
    /// Lost for good: the session ended (expired by the server or locally, closed, taken
    /// over) or the node was deleted. Another process may hold it now.
    Lost,
}

/// A task following a hold (or an election); it holds a clone of the client (which keeps
/// the session open), so it is aborted when its owner drops it.
#[derive(Debug)]
pub(crate) struct Follower(pub(crate) JoinHandle<()>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows `client`'s session and the existence of `node`, publishing the [`Hold`] until it is
/// lost or the returned follower is dropped.
pub(crate) fn follow(
    client: Client,
    node: String,
    in_doubt_after: Duration,
) -> (watch::Receiver<Hold>, Follower) {
    let (tx, rx) = watch::channel(Hold::Held);
    let task = tokio::spawn(async move {
        let mut states = client.state_stream();
        // The node's deletion (by an administrator, or the servers expiring the session),
        // watched beside the session's state: its requests wait while disconnected, the
        // state must not.
        let mut node_gone = Box::pin(node_deleted(client.clone(), node.clone()));
        loop {
            let change = states.borrow_and_update().clone();
            let hold = match change.state {
                s if s.is_terminal() => Hold::Lost,
                SessionState::Connected | SessionState::ConnectedReadOnly => Hold::Held,
                _ => {
                    let since = Instant::from_std(change.at);
                    if since.elapsed() >= in_doubt_after {
                        Hold::InDoubt
                    } else {
                        Hold::Held
                    }
                }
            };
            tracing::trace!(node = %node, state = ?change.state, ?hold, "following");
            tx.send_if_modified(|h| {
                let changed = *h != hold && *h != Hold::Lost;
                if changed {
                    tracing::debug!(node = %node, from = ?*h, to = ?hold, "hold changed");
                    *h = hold;
                }
                changed
            });
            if hold == Hold::Lost {
                return;
            }
            let doubt_at = (!change.state.is_connected())
                .then(|| Instant::from_std(change.at) + in_doubt_after)
                .filter(|at| *at > Instant::now());
            tokio::select! {
                r = states.changed() => {
                    if r.is_err() {
                        tx.send_replace(Hold::Lost);
                        return;
                    }
                }
                () = sleep_until(doubt_at) => {}
                () = &mut node_gone => {
                    tracing::info!(node = %node, "node deleted: lost");
                    tx.send_replace(Hold::Lost);
                    return;
                }
            }
        }
    });
    (rx, Follower(task))
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves once `node` is deleted (or found missing); pending forever once the session
/// has ended (the state stream reports that).
async fn node_deleted(client: Client, node: String) {
    loop {
        match client.exists_watch(&node).await {
            Ok((None, _)) => return,
            Ok((Some(_), watcher)) => {
                if watcher.await.event_type == EventType::NodeDeleted {
                    return;
                }
                tracing::trace!(node = %node, "node watch ended: re-arming");
            }
            Err(e) if e.is_terminal() => std::future::pending::<()>().await,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
