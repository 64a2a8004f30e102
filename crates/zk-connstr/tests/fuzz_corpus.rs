//! Replays every file of the `connstr` fuzz corpus through the fuzz target's entry point,
//! so the stable toolchain checks the corpus on every `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::Path;

#[test]
fn replay_connstr_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/connstr");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/connstr exists") {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            zk_connstr::fuzzing::connstr(&data);
            count += 1;
        }
    }
    assert!(
        count >= 30,
        "only {count} corpus files in {}",
        dir.display()
    );
}
