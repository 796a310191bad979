//! Visit leases: how the engine gets, hands out and gives back the visits of
//! links with `max_visits` (docs/max-visits.md).
//!
//! A task on the control thread. It learns of every limited link from the
//! snapshots installed and the changes applied ([`LeaseFeed`]), tracks it
//! on every core, asks control for a lease of its visits on NATS
//! (`snapshots::lease`, request/reply on `links.lease.<node id>`, the
//! grant signed with the link-signing key), and hands each core a slice of
//! the lease through the core's command channel. Cores report on their tick
//! when a slice runs low and when one ends, with the visits it did not
//! serve (`core::visits`); the task gives a core that runs low more of
//! the lease it holds, asks control for a new lease when that is spent,
//! takes back the other cores' slices when control has no more, and
//! returns a lease to control once no core can serve from it any more,
//! with its unused visits.
//!
//! Never more than leased: every visit a core serves comes from a slice,
//! every slice from a lease, and a lease's visits are handed out once (what
//! a lease had not handed out when the next one arrives moves to the next
//! one, and goes back with it if unused); a lease's unused visits are given
//! back only after every core holding a slice of it has reported that slice
//! ended. A lease ends on this engine
//! `ttl_ms` after the request that got it was sent, which is before
//! control counts it expired. When control cannot be reached, the cores
//! serve what they hold until their leases end and then answer limited
//! links as exhausted: never more, possibly fewer.

pub mod feed;

use crate::core::command::{Command, VisitCommand};
use crate::core::visits::{LinkKey, VisitReport, link_key};
use crate::shared::Shared;
use feed::LeaseEvent;
use servicekit::nats::NatsSettings;
use snapshots::lease::{
    LEASE_VERSION, LeaseGrant, LeaseMove, LeaseRequest, LeaseReturn, LeaseWant, MAX_LEASE_ITEMS,
    lease_subject,
};
use snapshots::signing::{DeltaVerifier, SIGNATURE_HEADER};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc::unbounded_channel;

/// How long a lease request may take before it is given up (and its links
/// asked for again).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often leases are looked at for their end and renewal.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// After control granted nothing (the budget is spent, or all leased to
/// other engines, which may give some back), a visited link is asked for
/// again after this, doubling with each further "nothing" up to
/// [`SPENT_RETRY_MAX`]: quick while other engines still return visits, one
/// request per engine every few seconds for a link that is sold out.
const SPENT_RETRY: Duration = Duration::from_millis(50);
const SPENT_RETRY_MAX: Duration = Duration::from_secs(1);
/// After a failed request, links are asked for again no sooner than this.
const ERROR_RETRY: Duration = Duration::from_millis(500);
/// Most visits asked for at once.
const MAX_WANT: u32 = 100_000;
/// Visits per core of a link's first lease: a link that starts busy must
/// not wait for many rounds of small leases (each a tick, a NATS round trip
/// and a transaction), and visits an idle engine holds come back when its
/// lease ends.
const FIRST_PER_CORE: u32 = 32;
/// A renewal asks for this many times what the previous lease handed out
/// (renewals are asked for before the lease is spent, so this is what keeps
/// up with a link whose traffic grows).
const GROWTH: u32 = 2;

/// One lease of one link, as the engine holds it.
#[derive(Debug)]
struct Held {
    id: u64,
    /// Unix ms when this engine stops serving it.
    until_ms: u64,
    /// Unix ms after which a renewal is asked for.
    renew_ms: u64,
    /// Visits not handed to any core yet.
    reserve: u32,
    /// Visits handed to each core in its open slice; 0: none open.
    open: Vec<u32>,
    /// Visits handed out in all.
    handed: u32,
    /// Visits known unused and dead (slices ended, reserve retired).
    unused: u32,
    /// No more is handed out of it (ended, or replaced by a newer lease).
    retired: bool,
}

impl Held {
    fn done(&self) -> bool {
        self.retired && self.open.iter().all(|&n| n == 0)
    }
}

#[derive(Debug)]
struct Tracked {
    max: u32,
    seq: u64,
    current: Option<Held>,
    retired: Vec<Held>,
    /// Cores that ran low and wait for visits.
    starving: Vec<bool>,
    /// To be asked for in the next request.
    want: bool,
    /// In the request in flight.
    asking: bool,
    /// Not to be asked for before this (unix ms).
    not_before_ms: u64,
    /// Control granted nothing the last time.
    spent: bool,
    /// The wait before asking again after the next "nothing".
    spent_retry_ms: u64,
    /// Visits to ask for next.
    size: u32,
}

struct Task {
    shared: Arc<Shared>,
    cores: usize,
    links: HashMap<LinkKey, Tracked>,
    /// Leases done, to return with the next request.
    returns: Vec<LeaseReturn>,
    /// Those in the request in flight (sent again if it fails: control
    /// closes a lease once, so a repeat is harmless).
    pending_returns: Vec<LeaseReturn>,
    /// Visits moved from an older lease into a newer one, to report with
    /// the next request (control moves them between the leases' rows).
    moves: Vec<LeaseMove>,
    /// Those in the request in flight (sent again if it fails: a lease
    /// moves once, so a repeat is harmless).
    pending_moves: Vec<LeaseMove>,
}

/// Runs forever on the control runtime.
pub async fn run(shared: Arc<Shared>, nats: NatsSettings, verifier: Option<DeltaVerifier>) {
    let Some(mut events) = shared.leases.take_receiver() else {
        return;
    };
    let (report_tx, mut reports) = unbounded_channel::<VisitReport>();
    for sender in &shared.senders {
        let _ = sender.send(Command::Visits(VisitCommand::Reporter(report_tx.clone())));
    }
    drop(report_tx);
    let node = crate::clicks::node_id(shared.config.node_id.as_deref());
    let subject = lease_subject(&shared.config.lease_subject, &node);
    let mut task = Task {
        cores: shared.senders.len(),
        shared,
        links: HashMap::new(),
        returns: Vec::new(),
        pending_returns: Vec::new(),
        moves: Vec::new(),
        pending_moves: Vec::new(),
    };
    let mut client: Option<async_nats::Client> = None;
    let mut in_flight: Option<tokio::task::JoinHandle<Result<(u64, LeaseGrant), String>>> = None;
    let mut sent_at_ms = 0u64;
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(event) = events.recv() => task.event(event),
            Some(report) = reports.recv() => task.report(report),
            _ = housekeeping.tick() => task.housekeeping(crate::clock::unix_ms()),
            done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                match done {
                    Ok(Ok((_, grant))) => task.granted(grant, sent_at_ms),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "lease request failed");
                        task.failed(crate::clock::unix_ms());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease request task failed");
                        task.failed(crate::clock::unix_ms());
                    }
                }
            }
        }
        // Drain what is already queued before asking, so one request
        // carries every link that ran low meanwhile.
        while let Ok(event) = events.try_recv() {
            task.event(event);
        }
        while let Ok(report) = reports.try_recv() {
            task.report(report);
        }
        if in_flight.is_none()
            && let Some(request) = task.next_request(&node, crate::clock::unix_ms())
        {
            if client.is_none() {
                let refused = RefusedLog {
                    subject: subject.clone(),
                    user: nats.user.clone(),
                };
                let connected = nats
                    .connect("engine leases", |options| {
                        options.event_callback(move |event| {
                            refused.log(&event);
                            std::future::ready(())
                        })
                    })
                    .await;
                match connected {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach NATS for visit leases");
                        task.failed(crate::clock::unix_ms());
                        continue;
                    }
                }
            }
            let Some(client) = client.clone() else {
                continue;
            };
            sent_at_ms = crate::clock::unix_ms();
            task.shared.leases.stats.requests.fetch_add(1, Relaxed);
            let subject = subject.clone();
            let verifier = verifier.clone();
            let stats = task.shared.clone();
            in_flight = Some(tokio::spawn(async move {
                let result = ask(&client, subject, &request, verifier.as_ref()).await;
                if result.is_err() {
                    stats.leases.stats.request_errors.fetch_add(1, Relaxed);
                }
                result.map(|grant| (request.nonce, grant))
            }));
        }
    }
}

/// Says so when the server refuses this engine something, such as a lease
/// request on its subject: the deploy lets each node's NATS user,
/// `engine-<node id>`, ask on its own node's subject only, so an engine whose
/// `--nats-user` is another node's gets no answer and no lease. Without this
/// the log would only say that requests got no answer in time.
struct RefusedLog {
    subject: String,
    user: Option<String>,
}

impl RefusedLog {
    fn log(&self, event: &async_nats::Event) {
        if let async_nats::Event::ServerError(error) = event {
            tracing::warn!(
                error = %error,
                subject = %self.subject,
                user = self.user.as_deref().unwrap_or(""),
                "NATS server error on the lease connection (a permissions violation on the lease subject: the user is not this node's; each engine-<node id> may ask on its own node's subject only)"
            );
        }
    }
}

/// One request and its checked grant.
async fn ask(
    client: &async_nats::Client,
    subject: String,
    request: &LeaseRequest,
    verifier: Option<&DeltaVerifier>,
) -> Result<LeaseGrant, String> {
    let reply = tokio::time::timeout(
        REQUEST_TIMEOUT,
        client.request(subject, request.encode().into()),
    )
    .await
    .map_err(|_| "no answer in time".to_owned())?
    .map_err(|e| e.to_string())?;
    if let Some(verifier) = verifier {
        let header = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(SIGNATURE_HEADER))
            .map(|v| v.as_str());
        verifier
            .verify(&reply.payload, header)
            .map_err(|e| format!("grant signature refused: {e}"))?;
    }
    LeaseGrant::decode(&reply.payload, request.nonce).map_err(|e| e.to_string())
}

impl Task {
    fn send(&self, core: usize, command: VisitCommand) {
        if let Some(sender) = self.shared.senders.get(core) {
            let _ = sender.send(Command::Visits(command));
        }
    }

    fn event(&mut self, event: LeaseEvent) {
        match event {
            LeaseEvent::Snapshot { seq, limited } => {
                let listed: std::collections::HashSet<&LinkKey> =
                    limited.iter().map(|(key, _)| key).collect();
                // Links the snapshot no longer has as limited, unless a
                // newer change said they are.
                let gone: Vec<LinkKey> = self
                    .links
                    .iter()
                    .filter(|(key, link)| link.seq <= seq && !listed.contains(key))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in gone {
                    self.forget(&key);
                }
                for (key, max) in limited {
                    self.limit(key, max, seq);
                }
            }
            LeaseEvent::Link {
                seq,
                key,
                max_visits,
            } => match max_visits {
                0 => self.forget(&key),
                max => self.limit(key, max, seq),
            },
        }
        self.shared
            .leases
            .stats
            .links
            .store(self.links.len() as u64, Relaxed);
    }

    /// The link is limited to `max`: tracked on every core and asked for.
    fn limit(&mut self, key: LinkKey, max: u32, seq: u64) {
        let cores = self.cores;
        match self.links.get_mut(&key) {
            Some(link) => {
                if link.max == 0 {
                    // Forgotten, its leases not back yet: tracked again.
                    for core in 0..cores {
                        if let Some(sender) = self.shared.senders.get(core) {
                            let _ = sender.send(Command::Visits(VisitCommand::Grant {
                                key: key.clone(),
                                lease: 0,
                                visits: 0,
                                until_ms: 0,
                            }));
                        }
                    }
                    link.starving = vec![true; cores];
                }
                if seq >= link.seq {
                    // A change (its limit raised, say) may have made visits
                    // available again: ask now.
                    let changed = link.max != max;
                    link.max = max;
                    link.seq = seq;
                    if changed {
                        link.spent = false;
                        link.not_before_ms = 0;
                        link.spent_retry_ms = SPENT_RETRY.as_millis() as u64;
                        link.want = link.current.as_ref().is_none_or(|c| c.reserve == 0);
                    }
                }
            }
            None => {
                for core in 0..cores {
                    self.send(
                        core,
                        VisitCommand::Grant {
                            key: key.clone(),
                            lease: 0,
                            visits: 0,
                            until_ms: 0,
                        },
                    );
                }
                self.links.insert(
                    key,
                    Tracked {
                        max,
                        seq,
                        current: None,
                        retired: Vec::new(),
                        starving: vec![true; cores],
                        want: true,
                        asking: false,
                        not_before_ms: 0,
                        spent: false,
                        spent_retry_ms: SPENT_RETRY.as_millis() as u64,
                        size: (FIRST_PER_CORE * cores as u32).min(max),
                    },
                );
            }
        }
    }

    /// The link is no longer limited: every core stops tracking it (their
    /// slices end and report), and its leases go back once they have.
    fn forget(&mut self, key: &LinkKey) {
        let Some(mut link) = self.links.remove(key) else {
            return;
        };
        for core in 0..self.cores {
            self.send(core, VisitCommand::Forget(key.clone()));
        }
        // Kept until the reports close the leases (under an empty key set:
        // they are found by lease id).
        if let Some(mut current) = link.current.take() {
            retire(&mut current);
            link.retired.push(current);
        }
        if !link.retired.is_empty() {
            link.want = false;
            link.max = 0;
            // Re-inserted under its key, untracked: no grant goes to it.
            self.links.insert(key.clone(), link);
        }
    }

    fn report(&mut self, report: VisitReport) {
        match report {
            VisitReport::Ended {
                core,
                key,
                lease,
                unused,
            } => {
                let Some(link) = self.links.get_mut(&key) else {
                    return;
                };
                let held = link
                    .current
                    .iter_mut()
                    .chain(link.retired.iter_mut())
                    .find(|h| h.id == lease);
                let Some(held) = held else {
                    return;
                };
                if let Some(open) = held.open.get_mut(core) {
                    *open = 0;
                }
                if held.retired {
                    held.unused = held.unused.saturating_add(unused);
                } else {
                    // Dead on that core, live in the lease: hand it again.
                    held.reserve = held.reserve.saturating_add(unused);
                }
                self.settle(&key);
            }
            VisitReport::Low { core, key } => {
                let Some(link) = self.links.get_mut(&key) else {
                    return;
                };
                if link.max == 0 {
                    return;
                }
                if let Some(starving) = link.starving.get_mut(core) {
                    *starving = true;
                }
                self.settle(&key);
            }
        }
    }

    /// Feeds starving cores from the current lease, asks for a new one or
    /// takes slices back when it is spent, and returns finished leases.
    fn settle(&mut self, key: &LinkKey) {
        let cores = self.cores;
        let Some(link) = self.links.get_mut(key) else {
            return;
        };
        let mut grants = Vec::new();
        let mut revokes = Vec::new();
        let now_ms = crate::clock::unix_ms();
        // A lease past its end hands out nothing more (housekeeping retires
        // it; the cores end their slices on their tick).
        if let Some(current) = link
            .current
            .as_mut()
            .filter(|c| !c.retired && now_ms < c.until_ms)
        {
            let starving: Vec<usize> = (0..cores).filter(|&c| link.starving[c]).collect();
            if !starving.is_empty() && current.reserve > 0 {
                let slice = slice_size(current.handed + current.reserve, cores)
                    .min(current.reserve / starving.len() as u32)
                    .max(1);
                for core in starving {
                    if current.reserve == 0 {
                        break;
                    }
                    let n = slice.min(current.reserve);
                    current.reserve -= n;
                    current.handed += n;
                    current.open[core] += n;
                    link.starving[core] = false;
                    grants.push((core, current.id, n, current.until_ms));
                }
            }
            // Less than a round of slices left: ask for the next lease now,
            // so it is there before a core runs dry.
            let round = slice_size(current.handed + current.reserve, cores) * cores as u32;
            if !link.spent && current.reserve < round {
                link.want = true;
            }
            if current.reserve == 0 && link.starving.iter().any(|&s| s) {
                if link.spent {
                    // Control has no more: take back what idle cores hold
                    // (of this lease or an older one) for the cores that
                    // are visited.
                    for core in 0..cores {
                        let holds = current.open[core] > 0
                            || link.retired.iter().any(|held| held.open[core] > 0);
                        if !link.starving[core] && holds {
                            revokes.push(core);
                        }
                    }
                } else {
                    link.want = true;
                }
            }
        } else if link.starving.iter().any(|&s| s) && link.max > 0 {
            link.want = true;
        }
        for (core, lease, visits, until_ms) in grants {
            self.send(
                core,
                VisitCommand::Grant {
                    key: key.clone(),
                    lease,
                    visits,
                    until_ms,
                },
            );
        }
        for core in revokes {
            self.send(core, VisitCommand::Revoke(key.clone()));
        }
        self.collect(key);
    }

    /// Moves finished leases of `key` to the returns.
    fn collect(&mut self, key: &LinkKey) {
        let Some(link) = self.links.get_mut(key) else {
            return;
        };
        let mut i = 0;
        while i < link.retired.len() {
            if link.retired[i].done() {
                let held = link.retired.swap_remove(i);
                self.returns.push(LeaseReturn {
                    lease: held.id,
                    unused: held.unused,
                });
                // Control will have these again: a core waiting for visits
                // asks in the same request, rather than after a wait.
                if held.unused > 0 && link.max > 0 && link.spent {
                    link.spent = false;
                    link.not_before_ms = 0;
                    link.want = link.starving.iter().any(|&s| s);
                }
            } else {
                i += 1;
            }
        }
        if link.max == 0 && link.current.is_none() && link.retired.is_empty() {
            self.links.remove(key);
        }
    }

    /// Ends leases at their end, asks for renewals, retries after waits.
    fn housekeeping(&mut self, now_ms: u64) {
        let keys: Vec<LinkKey> = self.links.keys().cloned().collect();
        for key in keys {
            let Some(link) = self.links.get_mut(&key) else {
                continue;
            };
            if let Some(current) = link.current.as_mut()
                && now_ms >= current.until_ms
            {
                // The cores end their slices on their own tick and report.
                let mut held = link.current.take().expect("checked");
                retire(&mut held);
                link.retired.push(held);
                if !link.spent && link.max > 0 {
                    link.want = true;
                }
            }
            if let Some(current) = link.current.as_ref()
                && now_ms >= current.renew_ms
                && !link.spent
                && link.max > 0
            {
                link.want = true;
            }
            // Spent, but visited: other engines may have given visits back.
            if link.spent
                && link.max > 0
                && now_ms >= link.not_before_ms
                && link.starving.iter().any(|&s| s)
            {
                link.want = true;
            }
            self.collect(&key);
        }
    }

    /// The next request: every link wanted (and not waiting), and the
    /// leases to return; `None` when there is nothing to say.
    fn next_request(&mut self, node: &str, now_ms: u64) -> Option<LeaseRequest> {
        let mut want = Vec::new();
        for (key, link) in self.links.iter_mut() {
            if want.len() == MAX_LEASE_ITEMS {
                break;
            }
            if link.want && !link.asking && link.max > 0 && now_ms >= link.not_before_ms {
                link.asking = true;
                link.want = false;
                let (domain, code) = key.split_at(4);
                want.push(LeaseWant {
                    domain: u32::from_le_bytes(domain.try_into().expect("4 bytes")),
                    code: String::from_utf8_lossy(code).into_owned(),
                    visits: link.size.clamp(1, MAX_WANT),
                });
            }
        }
        // Every move before the return of the lease it moved into: control
        // applies a request's moves before its returns, so returns wait
        // while moves are left for a later request.
        let take = self.moves.len().min(MAX_LEASE_ITEMS);
        let moves: Vec<LeaseMove> = self.moves.drain(..take).collect();
        let take = match self.moves.is_empty() {
            true => self.returns.len().min(MAX_LEASE_ITEMS),
            false => 0,
        };
        let returns: Vec<LeaseReturn> = self.returns.drain(..take).collect();
        if want.is_empty() && returns.is_empty() && moves.is_empty() {
            return None;
        }
        let mut nonce = [0u8; 8];
        let _ = getrandom::fill(&mut nonce);
        self.pending_returns = returns.clone();
        self.pending_moves = moves.clone();
        Some(LeaseRequest {
            v: LEASE_VERSION,
            node: node.to_owned(),
            nonce: u64::from_le_bytes(nonce),
            want,
            returns,
            moves,
        })
    }
}

impl Task {
    /// Applies control's grant to the request sent at `sent_at_ms`.
    fn granted(&mut self, grant: LeaseGrant, sent_at_ms: u64) {
        let stats = &self.shared.leases.stats;
        let returned: u64 = self
            .pending_returns
            .drain(..)
            .map(|r| u64::from(r.unused))
            .sum();
        stats.visits_returned.fetch_add(returned, Relaxed);
        self.pending_moves.clear();
        let now_ms = crate::clock::unix_ms();
        let cores = self.cores;
        let mut settle = Vec::new();
        for lease in grant.leases {
            let key = link_key(lease.domain, lease.code.as_bytes());
            stats
                .visits_leased
                .fetch_add(u64::from(lease.visits), Relaxed);
            let Some(link) = self.links.get_mut(&key) else {
                if lease.visits > 0 {
                    self.returns.push(LeaseReturn {
                        lease: lease.lease,
                        unused: lease.visits,
                    });
                }
                continue;
            };
            link.asking = false;
            if lease.visits == 0 {
                link.spent = true;
                link.not_before_ms = now_ms + link.spent_retry_ms;
                link.spent_retry_ms =
                    (link.spent_retry_ms * 2).min(SPENT_RETRY_MAX.as_millis() as u64);
                settle.push(key);
                continue;
            }
            let mut held = Held {
                id: lease.lease,
                until_ms: sent_at_ms.saturating_add(lease.ttl_ms),
                renew_ms: sent_at_ms.saturating_add(lease.ttl_ms * 2 / 3),
                reserve: lease.visits,
                open: vec![0; cores],
                handed: 0,
                unused: 0,
                retired: false,
            };
            if link.max == 0 {
                // No longer limited meanwhile: straight back.
                retire(&mut held);
                link.retired.push(held);
                settle.push(key);
                continue;
            }
            match link.current.take() {
                Some(mut old) => {
                    link.size = old
                        .handed
                        .saturating_mul(GROWTH)
                        .clamp(FIRST_PER_CORE * cores as u32, MAX_WANT);
                    // What the old lease has not handed out moves to the new
                    // one: served at most once either way, and given back
                    // (if unused) with the new one. The old one goes back
                    // once the cores' slices of it end; they keep serving
                    // them until they run low or the lease ends.
                    held.reserve = held.reserve.saturating_add(old.reserve);
                    if old.reserve > 0 {
                        self.moves.push(LeaseMove {
                            from: old.id,
                            into: held.id,
                            visits: old.reserve,
                        });
                    }
                    old.reserve = 0;
                    retire(&mut old);
                    link.retired.push(old);
                }
                // The first lease: every core gets a slice at once (half of
                // its share), so the visits are there before the visitors.
                None => link.starving = vec![true; cores],
            }
            link.current = Some(held);
            link.spent = false;
            link.spent_retry_ms = SPENT_RETRY.as_millis() as u64;
            settle.push(key);
        }
        for key in settle {
            self.settle(&key);
        }
    }

    /// The request failed: its links are asked for again a little later,
    /// its returns sent again.
    fn failed(&mut self, now_ms: u64) {
        let retry = now_ms + ERROR_RETRY.as_millis() as u64;
        for link in self.links.values_mut() {
            if link.asking {
                link.asking = false;
                link.want = true;
                link.not_before_ms = retry;
            }
        }
        self.returns.append(&mut self.pending_returns);
        self.moves.append(&mut self.pending_moves);
    }
}

/// Stops handing a lease out: what it has not handed is dead.
fn retire(held: &mut Held) {
    held.retired = true;
    held.unused = held.unused.saturating_add(held.reserve);
    held.reserve = 0;
}

/// A core's slice of a lease of `visits`: half of an even share, so the
/// other half is there for the cores that run low first.
fn slice_size(visits: u32, cores: usize) -> u32 {
    (visits / (2 * cores as u32).max(1)).max(1)
}
