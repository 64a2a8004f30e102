#![no_main]
//! The frame decoder fed random chunkings: byte 0 picks the limits, bytes 1..9 the split points.
//! The logic lives in `zk_proto::fuzzing::frame_decoder`, which `cargo test` also runs over the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_proto::fuzzing::frame_decoder(data));
