//! Visit lease records (`snapshots::lease`): a request as control reads it
//! from an engine and a grant as an engine reads it from control. Decoding
//! never panics, and what decodes re-encodes to something that decodes to
//! the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshots::lease::{DEFAULT_LEASE_SUBJECT, LeaseGrant, LeaseRequest};

fuzz_target!(|data: &[u8]| {
    let subject = "links.lease.edge-1";
    if let Ok(request) = LeaseRequest::decode(data, subject, DEFAULT_LEASE_SUBJECT) {
        let again = LeaseRequest::decode(&request.encode(), subject, DEFAULT_LEASE_SUBJECT)
            .expect("a decoded request re-encodes");
        assert_eq!(again, request);
    }
    // The nonce a grant must answer: from the input, so both outcomes run.
    let nonce = data.first().map_or(0, |&b| u64::from(b));
    if let Ok(grant) = LeaseGrant::decode(data, nonce) {
        let again = LeaseGrant::decode(&grant.encode(), nonce).expect("a decoded grant re-encodes");
        assert_eq!(again, grant);
    }
});
