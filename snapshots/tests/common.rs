//! Shared by the snapshot integration tests.
#![allow(dead_code)]

use snapshots::{Link, RedirectStatus, SnapshotBuilder};
use std::path::Path;

/// A small, varied set of links: every status, flags, expiry, long target.
pub fn sample_links() -> Vec<Link> {
    let mut links = vec![
        Link::new("a", "https://example.com/"),
        Link {
            status: RedirectStatus::Found,
            forward_query: true,
            seq: 5,
            ..Link::new("Fwd_1", "https://example.com/landing?utm=x")
        },
        Link {
            status: RedirectStatus::TemporaryRedirect,
            expires_at: Some(1_900_000_000),
            ..Link::new("exp-307", "http://example.org/tmp")
        },
        Link {
            status: RedirectStatus::PermanentRedirect,
            disabled: true,
            ..Link::new("off", "https://example.net/")
        },
        // Codes differing only in case are distinct.
        Link::new("AbC", "https://upper.example/"),
        Link::new("abc", "https://lower.example/"),
        Link::new(
            "x".repeat(64),
            format!("https://long.example/{}", "p".repeat(8000)),
        ),
    ];
    for i in 0..100 {
        links.push(Link::new(format!("n{i}"), format!("https://n.example/{i}")));
    }
    links
}

pub fn build(path: &Path, links: &[Link], sequence: u64) -> snapshots::BuildSummary {
    let mut builder = SnapshotBuilder::new(sequence).built_at_ms(1_700_000_000_000);
    for link in links {
        builder.push(link.clone()).unwrap();
    }
    builder.write_to(path).unwrap()
}
