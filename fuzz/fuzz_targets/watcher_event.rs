#![no_main]
//! WatcherEvent records and whole notification payloads.
//! The logic lives in `zk_proto::fuzzing::watcher_event`, which `cargo test` also runs over the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_proto::fuzzing::watcher_event(data));
