//! zk-connstr (work in progress).
