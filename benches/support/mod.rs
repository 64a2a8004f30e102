//! Code shared by the `failover`, `steady` and `fleet` benchmark targets: argument parsing,
//! statistics, result files, the Java probe, raw handshakes, healing the ensemble, /proc readers
//! and the report generator.
#![allow(
    dead_code,
    reason = "each bench target uses a different part of the support code"
)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark code")]

pub(crate) mod clients;
pub(crate) mod ensemble;
pub(crate) mod harness;
pub(crate) mod java;
pub(crate) mod raw;
pub(crate) mod report;
pub(crate) mod sys;
