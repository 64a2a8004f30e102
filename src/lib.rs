//! # zk-failover
//!
//! An async ZooKeeper client whose defining strength is surviving server failure.
//! This umbrella crate re-exports the workspace's member crates so an application can
//! depend on one crate; each member can also be used on its own.

pub use zk_connstr as connstr;
pub use zk_proto as proto;
