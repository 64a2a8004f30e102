//! zk-testkit (work in progress).
