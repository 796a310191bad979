//! The events the throughput example publishes and the pipeline bench
//! decodes: 300 user agents (Chrome on Windows, Safari on iPhone, Firefox on
//! Linux), 1,000 codes, a distinct address per event, one referrer. Shared
//! so that the bench measures what the example runs.

use snapshots::click::{ClickBatchWriter, ClickEvent};
use std::net::{IpAddr, Ipv4Addr};

/// Events per engine batch.
pub const BATCH: u32 = 1_000;

pub fn agents() -> Vec<String> {
    (0..300)
        .map(|i| match i % 3 {
            0 => format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36", 90 + i),
            1 => format!("Mozilla/5.0 (iPhone; CPU iPhone OS 17_{i} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"),
            _ => format!("Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/20100101 Firefox/{i}.0"),
        })
        .collect()
}

pub fn codes() -> Vec<String> {
    (0..1000).map(|i| format!("c{i:04}")).collect()
}

/// Writes batch `b` (its first `count` events) into `writer`; the caller
/// finishes it.
pub fn write_batch(
    writer: &mut ClickBatchWriter,
    b: u32,
    count: u32,
    codes: &[String],
    agents: &[String],
) {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&b.to_be_bytes());
    writer.begin(id);
    for i in 0..count {
        let n = b * BATCH + i;
        let mut event_id = [0u8; 16];
        event_id[..4].copy_from_slice(&n.to_be_bytes());
        event_id[4..8].copy_from_slice(b"bnch");
        let ip = IpAddr::V4(Ipv4Addr::from(
            0x5102_4500u32.wrapping_add(n.wrapping_mul(2_654_435_761) >> 8),
        ));
        writer.push(&ClickEvent {
            event_id,
            ts_ms: 1_763_700_000_000 + u64::from(n),
            status: 301,
            ip,
            code: codes[(n % 1000) as usize].as_bytes(),
            user_agent: agents[(n % 300) as usize].as_bytes(),
            referrer: b"https://news.example.com/story",
            accept_language: b"en-GB",
            host: b"sho.rt",
            domain: b"sho.rt",
            org_id: 0,
            rule: 0,
        });
    }
}
