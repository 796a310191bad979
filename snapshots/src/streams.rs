//! Names on the NATS side that every process must agree on.

/// JetStream stream of link changes, written by control, read by engines.
pub const LINKS_STREAM: &str = "LINKS";
/// The one subject of [`LINKS_STREAM`]. One subject keeps every change in a
/// single total order, which engines rely on.
pub const LINKS_SUBJECT: &str = "links.changes";
/// JetStream stream of click batches, written by engines, read by analytics.
pub const CLICKS_STREAM: &str = "CLICKS";
/// Subjects of [`CLICKS_STREAM`]: `clicks.<node id>`.
pub const CLICKS_SUBJECT_PREFIX: &str = "clicks";
/// Wildcard that matches every node's click subject.
pub const CLICKS_SUBJECTS: &str = "clicks.>";

/// The click subject for one engine node.
pub fn clicks_subject(node_id: &str) -> String {
    format!("{CLICKS_SUBJECT_PREFIX}.{node_id}")
}
