#![no_main]
//! The session core in the simulated ensemble the simulation tests use, with the faults
//! (crashes, freezes, elections, read-only and lagging servers, `SessionMoved`, a twin client,
//! time) chosen by the fuzzer. The logic lives in `zk_session_core::testing::ensemble_ops`,
//! which `cargo test` also runs over the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_session_core::testing::ensemble_ops(data));
