//! Which node a click batch may speak for: the node its subject names.
//!
//! An engine publishes its batches on `<prefix>.<node id>` and nowhere else
//! (engine/src/clicks/publisher.rs), and the deploy's NATS user of node N
//! may publish clicks on `<prefix>.N` only
//! (deploy/nats/engine-user.conf.template). So the subject a batch arrived
//! on says which node's credential sent it. The batch names its node too
//! ([`snapshots::click::ClickBatch::node_id`]), and that name is what
//! `clicks` stores; a batch naming another node than its subject is a node
//! (or a stolen credential) claiming another's clicks, or an engine whose
//! node id changed with batches still in its spool. Either way it is not
//! stored: the pipeline parks it with both names and acks it, as it does
//! an undecodable batch ([`crate::group`]), and counts it in
//! `analytics_batches_wrong_node_total`. The two halves need each other:
//! the server's permissions keep a node off other nodes' subjects, this
//! check keeps other nodes' names off a node's subject. Where the
//! permissions are looser than the deploy's (an older template, an open
//! development server), a node can still publish on another node's subject
//! a batch naming that node, and the sidecar cannot tell.
//!
//! A subject names a node only under a stream filter of the engines'
//! shape, `<prefix>.>` or `<prefix>.*` with a literal prefix (the default
//! `clicks.>`, and every one the deploy and the tests use): the node is
//! the token right after the prefix. Under any other filter (a literal
//! subject, `>` alone, a wildcard within the prefix) no subject names a
//! node, and every batch is taken whatever node it names, as before this
//! check existed.

use thiserror::Error;

/// Where the node token sits in the subjects of the stream's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectNodes {
    /// Tokens before the node's: the filter's literal prefix. `None` when
    /// the filter is not of the engines' shape (no subject names a node).
    prefix_tokens: Option<usize>,
}

/// A batch that names another node than the subject it arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "the batch names node {batch_node:?} but arrived on {subject:?}, the subject of node {subject_node:?}"
)]
pub struct WrongNode {
    /// The node the batch names (lossy UTF-8).
    pub batch_node: String,
    pub subject: String,
    /// The node the subject names.
    pub subject_node: String,
}

impl SubjectNodes {
    /// For a stream whose subjects are `filter` (the sidecar's `subjects`).
    pub fn new(filter: &str) -> SubjectNodes {
        let tokens: Vec<&str> = filter.split('.').collect();
        let (last, prefix) = tokens.split_last().expect("split yields a token");
        let literal = |t: &&str| !t.is_empty() && *t != "*" && *t != ">";
        let engines_shape =
            matches!(*last, ">" | "*") && !prefix.is_empty() && prefix.iter().all(literal);
        SubjectNodes {
            prefix_tokens: engines_shape.then_some(prefix.len()),
        }
    }

    /// The node `subject` names, if the filter gives its subjects one.
    pub fn node_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.split('.').nth(self.prefix_tokens?)
    }
}

/// Checks the node a batch names against the node its subject names
/// (`None`: the subject names none, and any node is taken).
pub fn check(
    subject: &str,
    subject_node: Option<&str>,
    batch_node: &[u8],
) -> Result<(), WrongNode> {
    match subject_node {
        Some(node) if node.as_bytes() != batch_node => Err(WrongNode {
            batch_node: String::from_utf8_lossy(batch_node).into_owned(),
            subject: subject.to_owned(),
            subject_node: node.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_the_token_after_the_filters_literal_prefix() {
        let default = SubjectNodes::new("clicks.>");
        assert_eq!(default.node_of("clicks.node-a"), Some("node-a"));
        // A token the engine never adds does not move the node.
        assert_eq!(default.node_of("clicks.node-a.core1"), Some("node-a"));
        let scoped = SubjectNodes::new("test_1.clicks.*");
        assert_eq!(scoped.node_of("test_1.clicks.edge"), Some("edge"));
    }

    #[test]
    fn other_filters_name_no_node() {
        for filter in [
            "clicks",
            ">",
            "*",
            "*.clicks.>",
            "clicks.*.x",
            "clicks.*.>",
            "a..>",
        ] {
            let nodes = SubjectNodes::new(filter);
            assert_eq!(nodes.node_of("clicks.node-a"), None, "{filter}");
            assert_eq!(nodes.node_of("clicks"), None, "{filter}");
        }
    }

    #[test]
    fn a_batch_must_name_its_subjects_node() {
        assert_eq!(check("clicks.a", Some("a"), b"a"), Ok(()));
        assert_eq!(check("clicks", None, b"anyone"), Ok(()));
        let wrong = check("clicks.a", Some("a"), b"b").unwrap_err();
        assert_eq!(
            wrong,
            WrongNode {
                batch_node: "b".into(),
                subject: "clicks.a".into(),
                subject_node: "a".into(),
            }
        );
        assert_eq!(
            wrong.to_string(),
            "the batch names node \"b\" but arrived on \"clicks.a\", the subject of node \"a\""
        );
        // Compared as bytes: a prefix or a differently cased name is another node.
        assert!(check("clicks.ab", Some("ab"), b"a").is_err());
        assert!(check("clicks.a", Some("a"), b"A").is_err());
    }
}
