//! zk-transport (work in progress).
