//! The engine's request parser on arbitrary bytes: never panics, never reads
//! past the buffer, and a complete request never claims more bytes than given.
#![no_main]

use engine::http::request::{Limits, Parse, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_uri: 4096,
        max_head: 8192,
    };
    if let Parse::Complete(request) = parse(data, &limits) {
        assert!(request.head_len <= data.len());
    }
});
