//! Any text as a stored record (SPEC ST2, X2): decoding never panics, and what decodes
//! re-encodes to a record that decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_bridge::Record;

fuzz_target!(|text: &str| {
    if let Ok(record) = Record::decode(text) {
        let again = Record::decode(&record.encode()).expect("encode output decodes");
        assert_eq!(again, record);
        let _ = record.session_object();
    }
});
