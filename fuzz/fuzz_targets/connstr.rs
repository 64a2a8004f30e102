//! Fuzz the connection-string parser: no panics, and every accepted string's canonical
//! form parses back to the same value (see `zk_connstr::fuzzing::connstr`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zk_connstr::fuzzing::connstr(data);
});
