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

/// `{"event":"ready"}` followed by `fields`, in their order.
pub fn line(fields: Map<String, Value>) -> String {
    let mut line = Map::new();
    line.insert("event".into(), Value::from("ready"));
    for (key, value) in fields {
        if key != "event" {
            line.insert(key, value);
        }
    }
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_event_comes_first_and_cannot_be_overridden() {
        let serde_json::Value::Object(fields) =
            serde_json::json!({"event": "other", "listen": "127.0.0.1:1"})
        else {
            unreachable!()
        };
        assert_eq!(
            super::line(fields),
            r#"{"event":"ready","listen":"127.0.0.1:1"}"#
        );
    }
}
