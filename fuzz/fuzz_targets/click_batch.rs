//! Click batches as the sidecar receives them from the stream: parsing never
//! panics, and every event of an accepted batch can be read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshots::click::ClickBatch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = ClickBatch::parse(data) {
        let mut n = 0;
        for event in batch.events() {
            let _ = (event.code, event.user_agent, event.referrer, event.ip);
            n += 1;
        }
        assert_eq!(n, batch.len());
    }
});
