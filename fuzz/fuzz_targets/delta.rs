//! Link deltas and their signature header: decoding never panics, and what
//! decodes re-encodes to something that decodes to the same delta.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshots::delta::LinkDelta;
use snapshots::signing::DeltaVerifier;

fuzz_target!(|data: &[u8]| {
    if let Ok(delta) = LinkDelta::decode(data) {
        let again = LinkDelta::decode(&delta.encode()).expect("a decoded delta re-encodes");
        assert_eq!(again, delta);
    }
    // The header parser on the same bytes (as text where they are UTF-8).
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = DeltaVerifier::default().verify(b"payload", Some(header));
    }
});
