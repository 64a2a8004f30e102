#![no_main]
//! Reply bodies decoded as the response record of every opcode, and as whole reply payloads.
//! The logic lives in `zk_proto::fuzzing::reply_decode`, which `cargo test` also runs over the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_proto::fuzzing::reply_decode(data));
