//! Telling "ClickHouse is not there" from "ClickHouse refuses these rows".
//!
//! The two call for opposite handling. Unavailability (no connection, a
//! timeout, a server out of memory, disk or connections, a table that is
//! missing or read-only, bad credentials) says nothing about the batches:
//! they are retried as long as it lasts and never parked, or an outage would
//! empty the stream into `parked_batches`. A refusal is an exception
//! ClickHouse raised while handling these very rows: the group is split to
//! find the batch it refuses, and that batch is parked after
//! `park_after_attempts` tries ([`crate::pipeline`]).
//!
//! Only an answer carrying a ClickHouse exception code that is not on the
//! [`UNAVAILABLE_CODES`] list counts as a refusal. Anything else — a network
//! or timeout error, an HTTP error without a ClickHouse code (a proxy's
//! page), a response the client could not read — is unavailability, so a
//! doubt is always resolved towards retrying, never towards parking.

/// What a failed ClickHouse request means for the batches in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retry the same rows later; nothing is wrong with them.
    Unavailable,
    /// ClickHouse raised an exception on these rows; find the batch and
    /// park it if it keeps happening.
    Refused,
}

/// ClickHouse exception codes that depend on the server's state, not on the
/// rows sent (names from ClickHouse's `ErrorCodes.cpp`).
pub const UNAVAILABLE_CODES: &[u32] = &[
    3,    // UNEXPECTED_END_OF_FILE: the request body was cut in transit
    10,   // NOT_FOUND_COLUMN_IN_BLOCK: the table was altered under us
    16,   // NO_SUCH_COLUMN_IN_TABLE: likewise
    32,   // ATTEMPT_TO_READ_AFTER_EOF: body cut in transit
    33,   // CANNOT_READ_ALL_DATA: likewise
    47,   // UNKNOWN_IDENTIFIER: the table was altered under us
    60,   // UNKNOWN_TABLE: dropped under us
    81,   // UNKNOWN_DATABASE: likewise
    159,  // TIMEOUT_EXCEEDED
    160,  // TOO_SLOW
    164,  // READONLY
    192,  // UNKNOWN_USER
    193,  // WRONG_PASSWORD
    194,  // REQUIRED_PASSWORD
    195,  // IP_ADDRESS_NOT_ALLOWED
    201,  // QUOTA_EXPIRED
    202,  // TOO_MANY_SIMULTANEOUS_QUERIES
    203,  // NO_FREE_CONNECTION
    209,  // SOCKET_TIMEOUT
    210,  // NETWORK_ERROR
    236,  // ABORTED
    241,  // MEMORY_LIMIT_EXCEEDED
    242,  // TABLE_IS_READ_ONLY
    243,  // NOT_ENOUGH_SPACE
    252,  // TOO_MANY_PARTS: merges behind inserts (but see `classify`)
    285,  // TOO_FEW_LIVE_REPLICAS
    286,  // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
    290,  // LIMIT_EXCEEDED
    291,  // DATABASE_ACCESS_DENIED
    319,  // UNKNOWN_STATUS_OF_INSERT
    394,  // QUERY_WAS_CANCELLED
    425,  // SYSTEM_ERROR
    473,  // DEADLOCK_AVOIDED
    497,  // ACCESS_DENIED
    516,  // AUTHENTICATION_FAILED
    999,  // KEEPER_EXCEPTION
    1000, // POCO_EXCEPTION: I/O and network errors inside the server
];

/// Classifies an error from a lookup or insert.
pub fn classify(error: &clickhouse::error::Error) -> Failure {
    match error {
        clickhouse::error::Error::BadResponse(text) => match exception_code(text) {
            // Later releases raise TOO_MANY_PARTS also for one insert whose
            // rows span more than `max_partitions_per_insert_block` months:
            // that one is about the rows.
            Some(252) if text.contains("partitions for single INSERT block") => Failure::Refused,
            Some(code) if !UNAVAILABLE_CODES.contains(&code) => Failure::Refused,
            _ => Failure::Unavailable,
        },
        _ => Failure::Unavailable,
    }
}

/// The number after the first `Code:` in a ClickHouse error text
/// (`Code: 395, e.displayText() = DB::Exception: ...` on 18.16,
/// `Code: 395. DB::Exception: ...` on later releases).
fn exception_code(text: &str) -> Option<u32> {
    let (_, rest) = text.split_once("Code:")?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error;

    #[test]
    fn exceptions_on_the_rows_are_refusals_and_the_rest_is_unavailability() {
        let refused = Error::BadResponse(
            "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception".into(),
        );
        assert_eq!(classify(&refused), Failure::Refused);
        let newer = Error::BadResponse("Code: 53. DB::Exception: Type mismatch".into());
        assert_eq!(classify(&newer), Failure::Refused);

        let gone = Error::BadResponse(
            "Code: 60, e.displayText() = DB::Exception: Table x.clicks doesn't exist.".into(),
        );
        assert_eq!(classify(&gone), Failure::Unavailable);
        let spread = Error::BadResponse(
            "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100)"
                .into(),
        );
        assert_eq!(classify(&spread), Failure::Refused);
        let merges = Error::BadResponse(
            "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts".into(),
        );
        assert_eq!(classify(&merges), Failure::Unavailable);
        let memory = Error::BadResponse("Code: 241. DB::Exception: Memory limit".into());
        assert_eq!(classify(&memory), Failure::Unavailable);
        // No ClickHouse code: a proxy or gateway answered.
        let proxy = Error::BadResponse("502 Bad Gateway".into());
        assert_eq!(classify(&proxy), Failure::Unavailable);
        assert_eq!(classify(&Error::TimedOut), Failure::Unavailable);
        assert_eq!(
            classify(&Error::Network("connection refused".into())),
            Failure::Unavailable
        );
    }

    #[test]
    fn codes_are_read_from_both_message_shapes() {
        assert_eq!(exception_code("Code: 395, e.displayText()"), Some(395));
        assert_eq!(exception_code("Code: 60. DB::Exception"), Some(60));
        assert_eq!(exception_code("Code:7"), Some(7));
        assert_eq!(exception_code("Code: x"), None);
        assert_eq!(exception_code("no code"), None);
    }
}
