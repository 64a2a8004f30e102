//! zk-client (work in progress).
