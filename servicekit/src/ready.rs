//! The readiness line: one JSON object on stdout once a service serves.
//!
//! `{"event":"ready", ...}` with the service's own fields (the addresses it
//! bound, which matters when a port 0 was asked for). `deploy/up.sh` and the
//! tests start a service and wait for this line instead of sleeping.

use serde_json::{Map, Value};
use std::io::Write as _;

/// Prints [`line`] on stdout, flushed.
pub fn announce(fields: Map<String, Value>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line(fields));
    let _ = out.flush();
}

/// `{"event":"ready"` first (a reader can match the line's start), then
/// `fields` in key order; an `event` among them is dropped.
pub fn line(fields: Map<String, Value>) -> String {
    let mut line = String::from(r#"{"event":"ready""#);
    for (key, value) in fields {
        if key != "event" {
            line.push(',');
            line.push_str(&Value::from(key).to_string());
            line.push(':');
            line.push_str(&value.to_string());
        }
    }
    line.push('}');
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_event_comes_first_and_cannot_be_overridden() {
        let serde_json::Value::Object(fields) =
            serde_json::json!({"admin": "127.0.0.1:2", "event": "other", "listen": "127.0.0.1:1"})
        else {
            unreachable!()
        };
        assert_eq!(
            super::line(fields),
            r#"{"event":"ready","admin":"127.0.0.1:2","listen":"127.0.0.1:1"}"#
        );
    }
}
