#![no_main]
//! Strict ConnectResponse payload parsing (and ConnectRequest decoding).
//! The logic lives in `zk_proto::fuzzing::connect_response`, which `cargo test` also runs over the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_proto::fuzzing::connect_response(data));
