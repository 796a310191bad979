//! Properties of the request parser: no input makes it panic, and any valid
//! request parses the same whole as in any prefix-then-rest split.

use engine::http::request::{Limits, Parse, parse};
use proptest::prelude::*;

fn limits() -> Limits {
    Limits {
        max_uri: 64,
        max_head: 256,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes, &limits());
        let _ = parse(&bytes, &Limits::default());
    }

    #[test]
    fn never_panics_on_near_http(
        method in "(GET|HEAD|POST|get|PRI|[A-Z]{0,8})",
        target in "[ -~]{0,80}",
        version in "(HTTP/1\\.[01]|HTTP/2\\.0|HTTP/1\\.|)",
        headers in proptest::collection::vec(("[ -~]{0,20}", "[\\t -~\\x80-\\xff]{0,40}"), 0..12),
        tail in "(\r\n|\n|\r|)",
    ) {
        let mut raw = format!("{method} {target} {version}\r\n");
        for (name, value) in &headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&tail);
        let bytes = raw.as_bytes();
        let whole = parse(bytes, &limits());
        // Partial never claims more than it has; Complete never reads past the end.
        if let Parse::Complete(request) = whole {
            prop_assert!(request.head_len <= bytes.len());
        }
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut], &limits());
        }
    }

    #[test]
    fn valid_requests_parse_and_prefixes_are_partial(
        code in "[A-Za-z0-9_-]{1,20}",
        query in "[a-z0-9=&]{0,20}",
        agent in "[ -~]{0,30}",
    ) {
        let raw = format!("GET /{code}?{query} HTTP/1.1\r\nHost: h\r\nUser-Agent: {agent}\r\n\r\n");
        let bytes = raw.as_bytes();
        match parse(bytes, &limits()) {
            Parse::Complete(request) => {
                prop_assert_eq!(request.head_len, bytes.len());
                let path = format!("/{code}");
                prop_assert_eq!(request.path, path.as_bytes());
                prop_assert_eq!(request.query, query.as_bytes());
            }
            other => prop_assert!(false, "{:?}", other),
        }
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse(&bytes[..cut], &limits()), Parse::Partial);
        }
    }
}
