//! Host lists that change: [`Client::update_hosts`] and following the ensemble's dynamic
//! configuration (`/zookeeper/config`, ZooKeeper 3.5+) automatically.
//!
//! The follower reads the configuration with a watch (re-armed by the client after every
//! reconnect, like every watch), takes the client address of every participant and observer
//! (servers without one are skipped; a wildcard address means the server's own host),
//! applies only a newer configuration version, and compares lists as sets — a reordered
//! list or duplicates change nothing. A configuration it cannot use (garbage, no client
//! address) leaves the list as it is and is reported in [`HostList::rejected`]: never an
//! empty host list. Behind a VIP or a load balancer, switch it off with
//! [`ClientBuilder::follow_reconfig(false)`](crate::ClientBuilder::follow_reconfig).

use std::sync::Weak;
use std::time::Duration;

use tokio::sync::watch;
use zk_connstr::{ConfigError, ConnectString, EnsembleConfig, HostSpec};
use zk_session::HostsError;

use crate::client::{Client, Inner};
use crate::error::{Error, Result};

/// The client's host list as it stands, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostList {
    /// The hosts the session chooses from.
    pub hosts: Vec<HostSpec>,
    /// The version of the ensemble configuration last applied, if the list came from one.
    pub config_version: Option<u64>,
    /// The last configuration that could not be used (its version if it had one, and why);
    /// the list above was kept.
    pub rejected: Option<(Option<u64>, ConfigError)>,
}

impl HostList {
    pub(crate) const fn new(hosts: Vec<HostSpec>) -> Self {
        Self {
            hosts,
            config_version: None,
            rejected: None,
        }
    }
}

fn hosts_error(e: HostsError, client: &Client) -> Error {
    match e {
        HostsError::Empty => Error::InvalidArgument {
            reason: "an empty host list",
        },
        HostsError::Unsupported => Error::InvalidArgument {
            reason: "the host provider cannot change its list",
        },
        _ => client.ended_error(),
    }
}

impl Client {
    /// Replaces the host list with the hosts of `hosts` (connection-string form; a chroot, if
    /// given, must be the client's own: it cannot change). Hosts are compared as a set. When
    /// the session's server is no longer listed the session moves to another; when the list
    /// grew it moves to a new server with probability 1 − old/new (ZOOKEEPER-1355), at a
    /// random moment within `Timing::rebalance_spread`. A move keeps the session (watches,
    /// ephemerals), re-sends reads and never abandons a write in flight. Returns whether the
    /// list changed.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`]; [`Error::InvalidArgument`] for another chroot or a
    /// host provider that cannot change; the terminal error once the session ended.
    pub async fn update_hosts(&self, hosts: &str) -> Result<bool> {
        let cs = ConnectString::parse(hosts)?;
        if cs.chroot().is_some() && cs.chroot() != self.chroot() {
            return Err(Error::InvalidArgument {
                reason: "the chroot cannot change",
            });
        }
        let (hosts, _) = cs.into_parts();
        self.apply_hosts(hosts, None).await
    }

    /// Changes of the host list (by [`Client::update_hosts`] or the ensemble configuration),
    /// and configurations rejected.
    #[must_use]
    pub fn host_list(&self) -> watch::Receiver<HostList> {
        self.host_list_sender().subscribe()
    }

    async fn apply_hosts(&self, hosts: Vec<HostSpec>, version: Option<u64>) -> Result<bool> {
        let changed = self
            .handle()
            .update_hosts(hosts.clone())
            .await
            .map_err(|e| hosts_error(e, self))?;
        self.host_list_sender().send_modify(|l| {
            if changed {
                l.hosts = hosts;
            }
            if version.is_some() {
                l.config_version = version;
            }
        });
        if changed {
            crate::telemetry::host_list_changed(version.is_some());
        }
        Ok(changed)
    }

    /// Applies one configuration read from `/zookeeper/config`.
    async fn apply_config(&self, data: &[u8]) {
        let applied = self.host_list_sender().borrow().config_version;
        let (version, hosts) = match EnsembleConfig::parse(data) {
            Ok(cfg) => {
                if let (Some(v), Some(a)) = (cfg.version, applied)
                    && v <= a
                {
                    return; // Not newer: already applied (or older, from a lagging server).
                }
                (cfg.version, cfg.client_hosts())
            }
            Err(e) => (None, Err(e)),
        };
        match hosts {
            Ok(hosts) => match self.apply_hosts(hosts, version).await {
                Ok(changed) => {
                    tracing::info!(?version, changed, "ensemble configuration applied");
                }
                Err(e) => tracing::warn!(%e, "ensemble configuration not applied"),
            },
            Err(e) => {
                tracing::warn!(%e, ?version, "ensemble configuration unusable: host list kept");
                crate::telemetry::config_rejected();
                self.host_list_sender()
                    .send_modify(|l| l.rejected = Some((version, e)));
            }
        }
    }
}

/// Follows `/zookeeper/config` for the client whose inner state `weak` points to, until the
/// session ends or every clone of the client is dropped (it holds no clone while waiting).
pub(crate) async fn follow(weak: Weak<Inner>) {
    loop {
        let Some(client) = weak.upgrade().map(Client::from_inner) else {
            return;
        };
        match client.get_config_watch().await {
            Ok((data, _, watcher)) => {
                client.apply_config(&data).await;
                drop(client);
                let ev = watcher.await;
                if ev.is_terminal() {
                    return;
                }
            }
            Err(e) if e.is_terminal() => return,
            // A server without dynamic configuration (3.4), or no permission: nothing to
            // follow.
            Err(Error::NoNode | Error::NoAuth | Error::Unimplemented) => return,
            Err(_) => {
                drop(client);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
