#![no_main]
//! The sans-I/O session core against one hostile peer scripted byte by byte: connects, server
//! bytes, closes, timer firings and user requests, with its invariants checked after every
//! step. The logic lives in `zk_session_core::testing::session_ops`, which `cargo test` also
//! runs over the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_session_core::testing::session_ops(data));
