//! FileStore recovery from whatever a disk holds (SPEC ST3, X2, L2): arbitrary bytes as the
//! contents of a session file and of a temp file in a fresh directory, plus a file with an odd
//! name; then open, get and list.
//!
//! Input: `<len: u16 LE><session file: len bytes><temp file: the rest>`, where the rest also
//! names a third file (its first bytes, kept to `[0-9a-f.A-Z]`, plus `.rec`). Oracles:
//!
//! - `open` never fails for content reasons and removes the temp file;
//! - `get` never fails: when the session file's bytes decode (`Record::decode`), it returns
//!   exactly that record and the file's bytes are untouched; a record of a newer format
//!   (`Record::newer_format`) reads as none and is left untouched (GW1); otherwise it returns
//!   none and the file is gone (a corrupt record is dropped);
//! - `list` never fails and holds the session's id exactly when its record decoded or is of a
//!   newer format;
//! - a record written back through the store reads back equal, byte for byte `encode()`.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use session_bridge::store::FileStore;
use session_bridge::{Record, Store};

const SID: &str = "fz";
const HEX: &str = "667a";

fn fresh_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "sb-fuzz-file-recovery-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn run(data: &[u8], dir: &PathBuf) {
    let (record_bytes, temp_bytes) = match data {
        [a, b, rest @ ..] => {
            let len = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
            rest.split_at(len)
        }
        _ => (data, &[][..]),
    };
    std::fs::create_dir_all(dir).unwrap();
    let record_path = dir.join(format!("{HEX}.rec"));
    let temp_path = dir.join(format!("{HEX}.0.tmp"));
    std::fs::write(&record_path, record_bytes).unwrap();
    std::fs::write(&temp_path, temp_bytes).unwrap();
    let odd: String = temp_bytes
        .iter()
        .take(12)
        .map(|&b| char::from(b))
        .filter(|c| c.is_ascii_hexdigit() || *c == '.' || c.is_ascii_uppercase())
        .collect();
    let odd_path = dir.join(format!("{odd}.rec"));
    if odd_path != record_path {
        std::fs::write(&odd_path, temp_bytes).unwrap();
    }

    let store = FileStore::open(dir).expect("open never fails for content reasons");
    assert!(
        !temp_path.exists(),
        "the orphan temp file is removed on open"
    );
    let expected = std::str::from_utf8(record_bytes)
        .ok()
        .and_then(|text| Record::decode(text).ok());
    // GW1: a record of a newer format is missing to this version and left in place.
    let newer = std::str::from_utf8(record_bytes)
        .ok()
        .and_then(Record::newer_format)
        .is_some();
    let got = block_on(store.get(SID)).expect("get never fails for content reasons");
    assert_eq!(got, expected);
    if expected.is_some() || newer {
        assert_eq!(
            std::fs::read(&record_path).unwrap(),
            record_bytes,
            "untouched"
        );
    } else {
        assert!(!record_path.exists(), "a corrupt record is dropped");
    }
    let listed = block_on(store.list()).expect("list never fails for content reasons");
    assert_eq!(
        listed.iter().any(|id| id == SID),
        expected.is_some() || newer
    );
    for id in &listed {
        // Whatever is listed can be read without an error (it may be dropped as corrupt).
        block_on(store.get(id)).expect("get of a listed id");
    }
    if let Some(record) = expected {
        let mut next = record.clone();
        next.version = next.version.wrapping_add(1);
        assert!(block_on(store.update(SID, next.clone(), record.version)).unwrap());
        assert_eq!(
            std::fs::read(&record_path).unwrap(),
            next.encode().as_bytes()
        );
        assert_eq!(block_on(store.get(SID)).unwrap(), Some(next));
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir();
    run(data, &dir);
    let _ = std::fs::remove_dir_all(&dir);
});
