//! zk-session (work in progress).
