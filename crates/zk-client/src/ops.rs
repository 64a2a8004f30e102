//! Typed arguments and results of operations: create modes, multi operations and their
//! results.

use bytes::Bytes;
use zk_proto::{Acl, Stat};

/// The kind of node [`Client::create`](crate::Client::create) makes. TTL nodes are made
/// with [`Client::create_ttl`](crate::Client::create_ttl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CreateMode {
    /// A node that lives until deleted.
    #[default]
    Persistent,
    /// A node deleted when the session that created it ends.
    Ephemeral,
    /// A persistent node whose name gets a 10-digit, monotonically increasing suffix.
    PersistentSequential,
    /// An ephemeral node whose name gets a sequence suffix.
    EphemeralSequential,
    /// A container: the server deletes it some time after its last child is gone.
    Container,
}

impl CreateMode {
    /// Whether the server appends a sequence number to the name.
    #[must_use]
    pub const fn is_sequential(self) -> bool {
        matches!(self, Self::PersistentSequential | Self::EphemeralSequential)
    }

    /// Whether the node ends with the session.
    #[must_use]
    pub const fn is_ephemeral(self) -> bool {
        matches!(self, Self::Ephemeral | Self::EphemeralSequential)
    }

    pub(crate) const fn flags(self) -> zk_proto::CreateMode {
        match self {
            Self::Persistent => zk_proto::CreateMode::Persistent,
            Self::Ephemeral => zk_proto::CreateMode::Ephemeral,
            Self::PersistentSequential => zk_proto::CreateMode::PersistentSequential,
            Self::EphemeralSequential => zk_proto::CreateMode::EphemeralSequential,
            Self::Container => zk_proto::CreateMode::Container,
        }
    }
}

/// One operation of a [`Client::multi`](crate::Client::multi) transaction.
///
/// ```
/// use zk_client::{CreateMode, Op, acl};
/// let ops = vec![
///     Op::check("/config", 3),
///     Op::create("/config/next", "v4", acl::open_unsafe(), CreateMode::Persistent),
///     Op::set_data("/config", "v4", 3),
///     Op::delete("/config/old", -1),
/// ];
/// # let _ = ops;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Create a node (its result carries the created path and its Stat).
    Create {
        /// Path (sequential modes append a suffix).
        path: String,
        /// Initial data.
        data: Bytes,
        /// ACL of the new node.
        acl: Vec<Acl>,
        /// Node kind.
        mode: CreateMode,
    },
    /// Delete a node if its version matches (`-1`: any version).
    Delete {
        /// Path.
        path: String,
        /// Expected version, or -1.
        version: i32,
    },
    /// Set a node's data if its version matches (`-1`: any version).
    SetData {
        /// Path.
        path: String,
        /// New data.
        data: Bytes,
        /// Expected version, or -1.
        version: i32,
    },
    /// Fail the transaction unless the node's version matches (`-1`: it exists).
    Check {
        /// Path.
        path: String,
        /// Expected version, or -1.
        version: i32,
    },
}

impl Op {
    /// A create.
    pub fn create(
        path: impl Into<String>,
        data: impl Into<Bytes>,
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Self {
        Self::Create {
            path: path.into(),
            data: data.into(),
            acl,
            mode,
        }
    }

    /// A delete.
    pub fn delete(path: impl Into<String>, version: i32) -> Self {
        Self::Delete {
            path: path.into(),
            version,
        }
    }

    /// A setData.
    pub fn set_data(path: impl Into<String>, data: impl Into<Bytes>, version: i32) -> Self {
        Self::SetData {
            path: path.into(),
            data: data.into(),
            version,
        }
    }

    /// A version check.
    pub fn check(path: impl Into<String>, version: i32) -> Self {
        Self::Check {
            path: path.into(),
            version,
        }
    }

    pub(crate) fn path(&self) -> &str {
        match self {
            Self::Create { path, .. }
            | Self::Delete { path, .. }
            | Self::SetData { path, .. }
            | Self::Check { path, .. } => path,
        }
    }
}

/// The result of one operation of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// A create succeeded.
    Create {
        /// The created path (chroot stripped; with the sequence suffix).
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// A delete succeeded.
    Delete,
    /// A setData succeeded.
    SetData {
        /// The node's Stat after the write.
        stat: Stat,
    },
    /// A check succeeded.
    Check,
    /// In a failed multi: this operation was fine but rolled back with the others.
    RolledBack,
    /// In a failed multi: this operation's error (or `RuntimeInconsistency` for the
    /// operations after the failing one, which were not attempted).
    Error(crate::Error),
}

/// One read of a [`Client::multi_read`](crate::Client::multi_read).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOp {
    /// Read a node's data and Stat.
    GetData {
        /// Path.
        path: String,
    },
    /// List a node's children.
    GetChildren {
        /// Path.
        path: String,
    },
}

impl ReadOp {
    /// A getData.
    pub fn get_data(path: impl Into<String>) -> Self {
        Self::GetData { path: path.into() }
    }

    /// A getChildren.
    pub fn get_children(path: impl Into<String>) -> Self {
        Self::GetChildren { path: path.into() }
    }

    pub(crate) fn path(&self) -> &str {
        match self {
            Self::GetData { path } | Self::GetChildren { path } => path,
        }
    }
}

/// The result of one read of a multiRead (each read succeeds or fails on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadResult {
    /// Data and Stat of a node.
    Data {
        /// The data (empty for a node created with no data).
        data: Bytes,
        /// The Stat.
        stat: Stat,
    },
    /// The children's names.
    Children(Vec<String>),
}

/// The kind of a persistent watch ([`Client::add_watch`](crate::Client::add_watch)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    /// Data and child events of one node, until removed.
    Persistent,
    /// Data events (created, deleted, changed) of a node and all its descendants, until
    /// removed. No child events (as on the server).
    PersistentRecursive,
}

/// Which watches [`Client::remove_watches`](crate::Client::remove_watches) and
/// [`Client::check_watches`](crate::Client::check_watches) are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatcherKind {
    /// Child watches.
    Children,
    /// Data and exists watches.
    Data,
    /// Persistent and persistent-recursive watches (server type `Any` restricted by the
    /// client to its persistent watchers).
    Persistent,
    /// Every kind.
    Any,
}

/// What [`Client::reconfig`](crate::Client::reconfig) changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reconfig {
    /// Incremental: add and/or remove servers (`server.N=host:...` lines, comma-separated;
    /// server ids to remove, comma-separated).
    Incremental {
        /// Servers to add, or `None`.
        joining: Option<String>,
        /// Server ids to remove, or `None`.
        leaving: Option<String>,
    },
    /// Non-incremental: the complete new membership.
    NewMembers(String),
}
