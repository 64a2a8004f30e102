//! Replays every committed fuzz corpus file through the same entry points the fuzz targets use,
//! so the stable toolchain checks them on every `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("frame_decoder", zk_proto::fuzzing::frame_decoder),
    ("reply_decode", zk_proto::fuzzing::reply_decode),
    ("watcher_event", zk_proto::fuzzing::watcher_event),
    ("connect_response", zk_proto::fuzzing::connect_response),
];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn replay_fuzz_corpora() {
    let mut targets_found = 0;
    for (name, run) in TARGETS {
        let dir = corpus_root().join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("no corpus for {name} at {}, skipped", dir.display());
            continue;
        };
        targets_found += 1;
        let mut files = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap();
                run(&data);
                files += 1;
            }
        }
        eprintln!("{name}: replayed {files} corpus files");
    }
    assert!(
        targets_found > 0,
        "no fuzz corpus found under {}",
        corpus_root().display()
    );
}
