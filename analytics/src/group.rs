//! A group of messages decoded for one insert: per batch, its enriched rows
//! and what is needed to park it; undecodable messages, and batches naming
//! another node than their subject ([`crate::attribution`]), as parked rows.
//!
//! A batch is the unit the pipeline splits a refused group into, so its rows
//! stay together, with the message's stream position to park it under.

use std::collections::HashSet;
use std::net::IpAddr;

use bytes::Bytes;
use snapshots::click::{ClickBatch, ClickBatchWriter, ClickEvent};

use crate::attribution;
use crate::encoded::ClickRows;
use crate::enrich::{Enricher, privacy};
use crate::hash::SeededXxh3;
use crate::rows::ParkedRow;

/// Where a message sat on the stream: what a parked row records about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub stream_seq: u64,
    pub subject: String,
    /// The `Nats-Msg-Id` header, if any.
    pub msg_id: String,
    /// The node the subject names ([`attribution::SubjectNodes`]), which
    /// the batch must name too; `None` takes a batch naming any node.
    pub node: Option<String>,
}

/// One decoded click batch of a group.
#[derive(Debug)]
pub struct Batch {
    pub origin: Origin,
    /// The message body as received. Parking re-encodes it with addresses
    /// cut ([`Batch::parked_row`]); the bytes themselves are never stored.
    pub payload: Bytes,
    /// Rows not stored yet, encoded as the insert sends them. Events an
    /// earlier batch of the group already carried are left out (counted in
    /// [`Group::duplicates_in_group`]).
    pub rows: ClickRows,
    /// Stored, or moved to the parked rows: nothing left to do.
    pub done: bool,
    /// Tries in which ClickHouse refused this batch on its own.
    pub refusals: u32,
    /// ClickHouse's answer to the last of them.
    pub last_refusal: String,
}

/// Messages decoded together, stored together, acked together.
#[derive(Debug, Default)]
pub struct Group {
    /// The NATS messages, acked once the group is stored (empty when a
    /// group is built from payloads directly).
    pub messages: Vec<async_nats::jetstream::Message>,
    /// The decodable batches, in message order.
    pub batches: Vec<Batch>,
    /// Rows for `parked_batches` not yet written: undecodable messages, and
    /// batches ClickHouse refused too often.
    pub parked: Vec<ParkedRow>,
    /// Events dropped because an earlier batch of the group had them.
    pub duplicates_in_group: u64,
    /// Batches parked because they name another node than their subject.
    pub wrong_node: u64,
}

impl Group {
    /// Decodes and enriches payloads into a group (no messages attached).
    /// Undecodable payloads become parked rows stamped `now` (Unix seconds)
    /// with their bytes as received, and batches naming another node than
    /// their origin's subject parked rows with their addresses cut
    /// ([`redacted`]); `stream` names the stream they came from.
    pub fn decode(
        enricher: &mut Enricher,
        stream: &str,
        now: u32,
        payloads: impl IntoIterator<Item = (Bytes, Origin)>,
    ) -> Group {
        let mut builder = GroupBuilder::default();
        for (payload, origin) in payloads {
            builder.push(enricher, stream, now, payload, origin);
        }
        builder.finish()
    }

    /// Whether every batch is done and every parked row written.
    pub fn is_stored(&self) -> bool {
        self.parked.is_empty() && self.batches.iter().all(|b| b.done)
    }
}

/// A group decoded one payload at a time, as the messages arrive (what
/// [`Group::decode`] does for payloads at hand).
#[derive(Debug, Default)]
pub struct GroupBuilder {
    group: Group,
    /// Event ids of the group so far: a later batch's copies are dropped.
    seen: HashSet<[u8; 16], SeededXxh3>,
}

impl GroupBuilder {
    /// Decodes and enriches one payload into the group (see [`Group::decode`]).
    pub fn push(
        &mut self,
        enricher: &mut Enricher,
        stream: &str,
        now: u32,
        payload: Bytes,
        origin: Origin,
    ) {
        let group = &mut self.group;
        match ClickBatch::parse(&payload) {
            Ok(batch) => {
                if let Err(wrong) =
                    attribution::check(&origin.subject, origin.node.as_deref(), batch.node_id())
                {
                    tracing::warn!(
                        batch_node = %wrong.batch_node, subject_node = %wrong.subject_node,
                        subject = %origin.subject, stream_seq = origin.stream_seq,
                        msg_id = %origin.msg_id, events = batch.len(),
                        "click batch naming another node than its subject; parking it in parked_batches"
                    );
                    group.wrong_node += 1;
                    let redacted = redacted(&payload);
                    group
                        .parked
                        .push(parked(stream, now, origin, wrong.to_string(), redacted));
                    return;
                }
                let node = String::from_utf8_lossy(batch.node_id()).into_owned();
                // A row is about the size of its record in the batch.
                let mut rows =
                    ClickRows::with_capacity(batch.len(), payload.len() / batch.len().max(1));
                for event in batch.events() {
                    if self.seen.insert(event.event_id) {
                        enricher.encode(&node, batch.batch_id(), &event, &mut rows);
                    } else {
                        group.duplicates_in_group += 1;
                    }
                }
                group.batches.push(Batch {
                    origin,
                    payload: payload.clone(),
                    rows,
                    done: false,
                    refusals: 0,
                    last_refusal: String::new(),
                });
            }
            Err(error) => {
                tracing::warn!(
                    %error, subject = %origin.subject, stream_seq = origin.stream_seq,
                    msg_id = %origin.msg_id, bytes = payload.len(),
                    "undecodable click batch; parking it in parked_batches"
                );
                group.parked.push(parked(
                    stream,
                    now,
                    origin,
                    error.to_string(),
                    payload.to_vec(),
                ));
            }
        }
    }

    /// Attaches a message to be acked with the group.
    pub fn push_message(&mut self, message: async_nats::jetstream::Message) {
        self.group.messages.push(message);
    }

    /// The messages attached so far.
    pub fn messages(&self) -> &[async_nats::jetstream::Message] {
        &self.group.messages
    }

    pub fn finish(self) -> Group {
        self.group
    }
}

impl Batch {
    /// The `parked_batches` row for this batch after ClickHouse refused it
    /// [`refusals`](Self::refusals) times: the batch re-encoded with every
    /// address cut to its stored prefix, never the bytes as received.
    pub fn parked_row(&self, stream: &str, now: u32) -> ParkedRow {
        let error = format!(
            "ClickHouse refused this batch {} times; last: {}",
            self.refusals, self.last_refusal
        );
        parked(
            stream,
            now,
            self.origin.clone(),
            error,
            redacted(&self.payload),
        )
    }
}

/// The `parked_batches` row of a message from `origin`, parked `now`.
fn parked(stream: &str, now: u32, origin: Origin, error: String, payload: Vec<u8>) -> ParkedRow {
    ParkedRow {
        parked_at: now,
        stream: stream.to_owned(),
        stream_seq: origin.stream_seq,
        subject: origin.subject,
        msg_id: origin.msg_id,
        error,
        payload,
    }
}

/// A click batch re-encoded with each address cut to /24 or /48, the form
/// `clicks` stores ([`privacy::truncate_ip`]); an IPv4-mapped IPv6 address
/// keeps its form with the IPv4 part cut. The re-encoding also drops any
/// record bytes a later format revision appended and cuts over-long fields
/// to the writer's limits; the node id is kept as (lossy) UTF-8. Empty for
/// bytes that are not a batch (never called with those).
pub fn redacted(payload: &[u8]) -> Vec<u8> {
    let Ok(batch) = ClickBatch::parse(payload) else {
        return Vec::new();
    };
    let node = String::from_utf8_lossy(batch.node_id());
    let mut writer = ClickBatchWriter::new(&node, payload.len());
    writer.begin(batch.batch_id());
    for event in batch.events() {
        writer.push(&ClickEvent {
            ip: cut(event.ip),
            ..event
        });
    }
    writer.finish().to_vec()
}

/// [`privacy::truncate_ip`], keeping an IPv4-mapped IPv6 address mapped.
fn cut(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => match privacy::truncate_ip(ip) {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            other => other,
        },
        _ => privacy::truncate_ip(ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_with(ips: &[&str]) -> Vec<u8> {
        let mut w = ClickBatchWriter::new("node-a", 1024);
        w.begin([9; 16]);
        for (i, ip) in ips.iter().enumerate() {
            w.push(&ClickEvent {
                event_id: [i as u8; 16],
                ts_ms: 1_700_000_000_000,
                status: 301,
                ip: ip.parse().unwrap(),
                code: b"abc",
                user_agent: b"UA",
                referrer: b"",
                accept_language: b"",
                host: b"sho.rt",
                domain: b"sho.rt",
                org_id: 0,
                rule: 0,
            });
        }
        w.finish().to_vec()
    }

    #[test]
    fn a_parked_batch_holds_only_address_prefixes() {
        let original = batch_with(&["81.2.69.142", "2001:db8:1234:5678::1", "::ffff:10.1.2.3"]);
        let parked = redacted(&original);
        let batch = ClickBatch::parse(&parked).unwrap();
        let ips: Vec<String> = batch.events().map(|e| e.ip.to_string()).collect();
        assert_eq!(ips, ["81.2.69.0", "2001:db8:1234::", "::ffff:10.1.2.0"]);
        // Everything else is what was received.
        let before = ClickBatch::parse(&original).unwrap();
        assert_eq!(batch.batch_id(), before.batch_id());
        assert_eq!(batch.node_id(), before.node_id());
        for (a, b) in batch.events().zip(before.events()) {
            assert_eq!(ClickEvent { ip: b.ip, ..a }, b);
        }
        assert!(!parked.windows(4).any(|w| w == [81, 2, 69, 142]));
    }

    #[test]
    fn decoding_keeps_batches_apart_and_drops_repeated_events() {
        let mut enricher = Enricher::new(None, 16);
        let a = Bytes::from(batch_with(&["81.2.69.142", "81.2.69.143"]));
        let group = Group::decode(
            &mut enricher,
            "CLICKS",
            7,
            [
                (a.clone(), Origin::default()),
                (Bytes::from_static(b"junk"), Origin::default()),
                (a, Origin::default()),
            ],
        );
        assert_eq!(group.batches.len(), 2);
        assert_eq!(group.batches[0].rows.len(), 2);
        assert_eq!(group.batches[1].rows.len(), 0);
        assert_eq!(group.duplicates_in_group, 2);
        assert_eq!(group.parked.len(), 1);
        assert_eq!(group.parked[0].payload, b"junk");
        assert_eq!(group.parked[0].parked_at, 7);
    }

    #[test]
    fn a_batch_naming_another_node_than_its_subject_is_parked_with_cut_addresses() {
        let mut enricher = Enricher::new(None, 16);
        let a = Bytes::from(batch_with(&["81.2.69.142", "81.2.69.143"]));
        let on = |node: &str| Origin {
            stream_seq: 4,
            subject: format!("clicks.{node}"),
            msg_id: "m".into(),
            node: Some(node.into()),
        };
        // The batch names node-a: refused on node-b's subject, taken on its
        // own; the refused copy's events do not count as seen.
        let group = Group::decode(
            &mut enricher,
            "CLICKS",
            7,
            [(a.clone(), on("node-b")), (a.clone(), on("node-a"))],
        );
        assert_eq!(group.wrong_node, 1);
        assert_eq!(group.duplicates_in_group, 0);
        assert_eq!(group.batches.len(), 1);
        assert_eq!(group.batches[0].origin.subject, "clicks.node-a");
        assert_eq!(group.batches[0].rows.len(), 2);
        let parked = &group.parked[..];
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].subject, "clicks.node-b");
        assert_eq!(
            parked[0].error,
            "the batch names node \"node-a\" but arrived on \"clicks.node-b\", the subject of node \"node-b\""
        );
        assert_eq!(parked[0].payload, redacted(&a));
    }
}
