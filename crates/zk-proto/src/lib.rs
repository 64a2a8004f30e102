//! zk-proto (work in progress).
