//! The HTTP/1.1 exchange of one connection, whatever delivers its bytes.
//!
//! Both I/O backends ([`crate::backend::glommio_net`] on glommio's sockets,
//! [`crate::backend::uring`] on the engine's own ring) hand the bytes they
//! received to a [`Session`] and send
//! what it writes into their output buffer. Keeping the protocol here, once,
//! is what makes the backends behave the same: pipelining, body skipping,
//! limits, every malformed-input answer and both deadlines.
//!
//! Deadlines: a new connection's first request must be whole within the
//! header timeout of the accept (a connection that never sends a byte holds
//! its slot no longer than that; less, `crowded_first_byte_timeout_ms`, once
//! the core's slots are more than 3/4 full); while a later request is
//! incomplete (bytes buffered, or a body still to skip) the header deadline
//! applies, set when its first byte arrived; in between requests the idle
//! timeout applies. The backend enforces [`Session::cutoff`]: a slow head is
//! answered `408` ([`timeout_answer`]), a silent or idle connection is closed
//! quietly.
//!
//! Domains: the request's `Host` picks the domain ([`super::domains`]);
//! well-known answers come first, then the domain's plain-HTTP mode, its
//! root and not-found redirects around the `(domain, code)` lookup.
//! `Strict-Transport-Security` goes only on answers over TLS
//! ([`Session::set_secure`]; the plain listener never sets it).
//!
//! Clicks: a redirect, or a `410` for a known code, is recorded with the
//! client address cut to its kept prefix and the domain's name. A request for a code that does not
//! exist is not: its code is whatever the client typed, and keeping it would
//! let anyone fill the click store; it is counted
//! (`engine_unknown_code_requests_total`) instead.

use super::Core;
use super::domains::DomainEntry;
use super::lifecycle::{Answer, Target};
use super::state::Lookup;
use crate::clicks::client_ip::{ClientIpHeader, client_ip, cut};
use crate::http::request::{self, Body, Method, Parse, Reject, Request, Undecodable};
use crate::http::response::{Canned, Persist, status_index};
use snapshots::click::ClickEvent;
use snapshots::domain::{HostName, MAX_DOMAIN_LEN, WELL_KNOWN_PREFIX, normalize_host};
use snapshots::link::MAX_CODE_LEN;
use std::net::IpAddr;
use std::time::Instant;

/// Answers stop being produced once this much output is waiting to be sent:
/// the backend sends, then hands over the rest of its input again.
pub const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// One connection's protocol state between reads.
#[derive(Debug)]
pub struct Session {
    /// Body bytes of the last request still to be skipped.
    discard: u64,
    /// When the request under way must be complete.
    deadline: Option<Instant>,
    /// When bytes last arrived (the idle timeout counts from here).
    last_activity: Instant,
    /// No byte has arrived yet.
    fresh: bool,
    /// When the connection was accepted (the first request's deadline
    /// counts from here).
    accepted: Instant,
    /// The connection is TLS: `redirect-https` domains are served, and
    /// their `Strict-Transport-Security` is sent. Set by a TLS listener.
    secure: bool,
}

/// What one [`Session::process`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used (answered requests and skipped body bytes).
    pub consumed: usize,
    /// Requests answered.
    pub answered: u64,
    /// The connection must close once the output is sent; the rest of the
    /// input is never looked at.
    pub close: bool,
    /// Stopped at [`MAX_PENDING_OUTPUT`] with input left: send, then call
    /// again with the rest.
    pub full: bool,
}

impl Session {
    /// A session for a connection accepted at `now`.
    pub fn new(now: Instant) -> Session {
        Session {
            discard: 0,
            deadline: None,
            last_activity: now,
            fresh: true,
            accepted: now,
            secure: false,
        }
    }

    /// Marks the connection as TLS (the hook for the TLS listener).
    #[inline]
    pub fn set_secure(&mut self, secure: bool) {
        self.secure = secure;
    }

    /// Whether the connection has not sent a byte yet.
    #[inline]
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Whether a request is under way, given `buffered` unconsumed bytes.
    #[inline]
    pub fn pending(&self, buffered: usize) -> bool {
        buffered > 0 || self.discard > 0
    }

    /// Bytes arrived at `arrived`; `buffered` were already waiting.
    #[inline]
    pub fn arrived(&mut self, core: &Core, buffered: usize, arrived: Instant) {
        if self.fresh {
            // The first request's clock started at the accept.
            self.fresh = false;
            self.deadline = Some(self.accepted + core.header_timeout);
        } else if !self.pending(buffered) {
            self.deadline = Some(arrived + core.header_timeout);
        }
        self.last_activity = arrived;
    }

    /// When the connection is cut off if nothing more arrives: for a new
    /// connection, the header timeout from accept (the shorter first-byte
    /// deadline when `crowded`); the header deadline while a request is
    /// under way; the idle timeout otherwise.
    #[inline]
    pub fn cutoff(&self, core: &Core, buffered: usize, crowded: bool) -> Instant {
        if self.fresh {
            let by = self.accepted + core.header_timeout;
            return match crowded {
                true => by.min(self.accepted + core.crowded_first_byte),
                false => by,
            };
        }
        match self.deadline {
            Some(at) if self.pending(buffered) => at,
            _ => self.last_activity + core.idle_timeout,
        }
    }

    /// After the consumed bytes were dropped: whether the connection is now
    /// between requests (nothing buffered, no body to skip).
    #[inline]
    pub fn settle(&mut self, buffered: usize) -> bool {
        let idle = !self.pending(buffered);
        if idle {
            self.deadline = None;
        }
        idle
    }

    /// Answers every complete request at the start of `input` into `out`.
    /// `arrived` is when the input's last bytes came, `now_ms` the unix time
    /// for click records.
    pub fn process(
        &mut self,
        core: &Core,
        input: &[u8],
        peer: IpAddr,
        arrived: Instant,
        now_ms: u64,
        out: &mut Vec<u8>,
    ) -> Progress {
        let mut progress = Progress {
            consumed: 0,
            answered: 0,
            close: false,
            full: false,
        };
        let filled = input.len();
        let mut start = 0usize;
        loop {
            if self.discard > 0 {
                let skip = self.discard.min((filled - start) as u64);
                start += skip as usize;
                self.discard -= skip;
                if self.discard > 0 {
                    break;
                }
                // The next request's clock starts now.
                self.deadline = Some(arrived + core.header_timeout);
            }
            if start == filled {
                break;
            }
            if out.len() >= MAX_PENDING_OUTPUT {
                progress.full = true;
                break;
            }
            // A head is only ever looked at through a window of the head
            // limit, as if the input buffer were exactly that long.
            let window = &input[start..filled.min(start + core.limits.max_head)];
            match request::parse(window, &core.limits) {
                Parse::Complete(mut req) => {
                    // A small POST body (a password form) is read whole from
                    // the window when it fits; whether it is waited for is
                    // `answer`'s call (only a protected link wants it).
                    let mut form_len = 0;
                    if req.method == Method::Post
                        && let Body::Length(n) = req.body
                        && n <= super::gate::MAX_FORM_BODY as u64
                        && req.head_len + n as usize <= core.limits.max_head
                    {
                        let end = req.head_len + n as usize;
                        match window.get(req.head_len..end) {
                            Some(form) => {
                                req.form = Some(form);
                                form_len = n;
                            }
                            None => req.form_pending = true,
                        }
                    }
                    let (status, keep) = answer(core, &req, peer, now_ms, self.secure, out);
                    if status == AWAIT_BODY {
                        break;
                    }
                    start += req.head_len;
                    progress.answered += 1;
                    count(core, status);
                    if let Body::Length(n) = req.body {
                        // A form read whole is consumed; any other body skipped.
                        start += form_len as usize;
                        self.discard = n - form_len;
                    }
                    if !keep {
                        progress.close = true;
                        break;
                    }
                    self.deadline = Some(arrived + core.header_timeout);
                }
                Parse::Partial => break,
                Parse::Error(reject) => {
                    let canned = match reject {
                        Reject::BadRequest => Canned::BadRequest,
                        Reject::UriTooLong => Canned::UriTooLong,
                        Reject::HeadersTooLarge => Canned::HeadersTooLarge,
                        Reject::VersionNotSupported => Canned::VersionNotSupported,
                    };
                    core.metrics.parse_errors.inc();
                    core.pre.borrow().canned(out, canned, false, Persist::Close);
                    count(core, canned.status());
                    progress.answered += 1;
                    progress.close = true;
                    break;
                }
            }
        }
        progress.consumed = start;
        progress
    }
}

/// What [`answer`] returns, writing nothing, for a protected link's form
/// whose body is still on its way: the session waits for more input.
const AWAIT_BODY: u16 = 0;

/// The answer to a head that did not arrive in time; the connection closes
/// after it.
pub fn timeout_answer(core: &Core, out: &mut Vec<u8>) {
    core.metrics.header_timeouts.inc();
    core.pre
        .borrow()
        .canned(out, Canned::RequestTimeout, false, Persist::Close);
    count(core, 408);
}

#[inline]
pub fn count(core: &Core, status: u16) {
    core.metrics.responses[status_index(status)].inc();
}

/// Writes the answer to `req` into `out`; returns the status and whether the
/// connection may carry another request. `secure`: the connection is TLS.
#[inline]
pub fn answer(
    core: &Core,
    req: &Request<'_>,
    peer: IpAddr,
    now_ms: u64,
    secure: bool,
    out: &mut Vec<u8>,
) -> (u16, bool) {
    let pre = core.pre.borrow();
    let head_only = req.method == Method::Head;
    // A body is skipped only up to a limit, and a chunked one not at all:
    // in both cases the connection ends after this answer.
    let body_ok = match req.body {
        Body::None => true,
        Body::Length(n) => n <= core.max_body,
        Body::Chunked => false,
    };
    if let Body::Length(n) = req.body
        && n > core.max_body
    {
        pre.canned(out, Canned::PayloadTooLarge, head_only, Persist::Close);
        return (413, false);
    }
    let keep = req.keep_alive && body_ok && !core.draining.get();
    let persist = Persist::new(keep, req.http11);
    if req.method == Method::Other {
        pre.canned(out, Canned::MethodNotAllowed, false, persist);
        return (405, keep);
    }
    let state = core.state.borrow();
    if req.method == Method::Post {
        // Only a protected link's form takes a POST.
        let mut decoded = [0u8; MAX_CODE_LEN];
        return match gated_post(core, &state, req, secure, &mut decoded) {
            Some((domain, code, target)) => {
                let hsts: &[u8] = if secure { &domain.hsts_line } else { b"" };
                let link = GatedLink {
                    domain,
                    code,
                    target,
                    hsts,
                };
                gated(
                    core, &state, req, peer, now_ms, secure, link, persist, out, keep,
                )
            }
            None => {
                pre.canned(out, Canned::MethodNotAllowed, false, persist);
                (405, keep)
            }
        };
    }
    let domains = state.domains();
    // The Host, normalised on the stack; no Host (HTTP/1.0) names no domain.
    let mut host_buf = [0u8; MAX_DOMAIN_LEN + 1];
    let host = if req.host.is_empty() {
        HostName::Address
    } else {
        normalize_host(req.host, &mut host_buf)
    };
    // Well-known answers first, for any host: they are how a domain is
    // verified, before it is served.
    if let HostName::Name(name) = host
        && req.path.starts_with(WELL_KNOWN_PREFIX.as_bytes())
        && let Some(body) = domains.well_known(name, req.path)
    {
        pre.text(out, body, head_only, persist);
        return (200, keep);
    }
    let Some(domain) = domains.resolve(host) else {
        core.metrics.unknown_hosts.inc();
        pre.canned(out, Canned::NotFound, head_only, persist);
        return (404, keep);
    };
    if domain.redirect_https && !secure && !domain.name.is_empty() {
        pre.https_redirect(out, &domain.name, req.path, req.query, persist);
        return (308, keep);
    }
    let hsts: &[u8] = if secure { &domain.hsts_line } else { b"" };
    let raw_code = match req.path {
        [b'/', code @ ..] => code,
        _ => &b""[..],
    };
    // `/ru%73t` is `rust`: decoded on the stack, at most a code's length.
    let mut decoded = [0u8; MAX_CODE_LEN];
    let code = match request::percent_decode(raw_code, &mut decoded) {
        Ok(code) => code,
        Err(Undecodable::InvalidEscape) => {
            pre.canned(out, Canned::BadRequest, head_only, Persist::Close);
            return (400, false);
        }
        Err(Undecodable::TooLong) => {
            // No code is that long.
            core.metrics.unknown_codes.inc();
            return not_found(&pre, domain, head_only, persist, hsts, out, keep);
        }
    };
    if code.is_empty() {
        let root = domain
            .root_redirect
            .as_deref()
            .or(core.root_redirect.as_deref());
        return match root {
            Some(url) => {
                let status = snapshots::RedirectStatus::Found;
                pre.redirect_with(out, status, url, b"", persist, i64::MAX, hsts);
                (302, keep)
            }
            None => {
                pre.canned_with(out, Canned::NotFound, head_only, persist, hsts);
                (404, keep)
            }
        };
    }
    let now = core.clock.secs();
    let canned = match state.lookup_in(domain.id, code) {
        Lookup::Found(target) => {
            match link_answer(core, &state, domain.id, code, &target, now) {
                Answer::Redirect { .. } if target.has_password => {
                    let link = GatedLink {
                        domain,
                        code,
                        target,
                        hsts,
                    };
                    return gated(
                        core, &state, req, peer, now_ms, secure, link, persist, out, keep,
                    );
                }
                Answer::Redirect { lifetime } => {
                    let query = if target.forward_query { req.query } else { b"" };
                    let (location, status, lifetime, rule) = if target.has_rules {
                        // The answer depends on who asks: never cached.
                        match choose_rule(core, &state, req, peer, (domain.id, code), now) {
                            Some(chosen) => (chosen.location, chosen.status, 0, chosen.rule),
                            None => (target.location, target.status, 0, 0),
                        }
                    } else {
                        (target.location, target.status, lifetime, 0)
                    };
                    // A cached permanent redirect must not outlive the link.
                    pre.redirect_with(out, status, location, query, persist, lifetime, hsts);
                    let status = status.code();
                    capture(
                        core,
                        req,
                        peer,
                        (code, target.org_id, rule),
                        &domain.name,
                        status,
                        now_ms,
                    );
                    return (status, keep);
                }
                Answer::Expired { location } => {
                    // 302: never cached, the link may be edited again.
                    let status = snapshots::RedirectStatus::Found;
                    pre.redirect_with(out, status, location, b"", persist, i64::MAX, hsts);
                    capture(
                        core,
                        req,
                        peer,
                        (code, target.org_id, 0),
                        &domain.name,
                        302,
                        now_ms,
                    );
                    return (302, keep);
                }
                Answer::NotYet => {
                    core.metrics.unknown_codes.inc();
                    return not_found(&pre, domain, head_only, persist, hsts, out, keep);
                }
                Answer::Gone => {
                    let status = core.gone.status();
                    capture(
                        core,
                        req,
                        peer,
                        (code, target.org_id, 0),
                        &domain.name,
                        status,
                        now_ms,
                    );
                    core.gone
                }
            }
        }
        Lookup::Missing => {
            core.metrics.unknown_codes.inc();
            return not_found(&pre, domain, head_only, persist, hsts, out, keep);
        }
        Lookup::NotReady => Canned::NotReady,
    };
    pre.canned_with(out, canned, head_only, persist, hsts);
    (canned.status(), keep)
}

/// What the link `target` found at `(domain, code)` answers at `now`: a
/// plain one straight away, else (disabled, expired, with extras, rules, a
/// password or a visit limit) through its lifecycle, reading its extras if
/// it has them. A limited link's redirect takes one of this core's leased
/// visits ([`limited_visit`]); a password-protected one's is taken only
/// when the password lets the visitor through ([`gated`]), not for its form.
#[inline]
fn link_answer<'s>(
    core: &Core,
    state: &'s super::state::CoreState,
    domain: u32,
    code: &[u8],
    target: &Target<'s>,
    now: i64,
) -> Answer<'s> {
    if target.redirects_plainly(now) {
        return Answer::Redirect {
            lifetime: target.lifetime(now),
        };
    }
    let extra = match target.has_extra {
        true => state.extra_in(domain, code),
        false => None,
    };
    match target.answer(extra, now) {
        Answer::Redirect { .. } if target.limited && !target.has_password => {
            limited_visit(core, domain, code, target, extra)
        }
        answer => answer,
    }
}

/// A visit of a link with `max_visits` that would redirect: the redirect
/// (never cached: a cached redirect would be a visit nobody counted) while
/// this core has leased visits of it, else the link's expired answer.
#[cold]
#[inline(never)]
fn limited_visit<'s>(
    core: &Core,
    domain: u32,
    code: &[u8],
    target: &Target<'s>,
    extra: Option<super::lifecycle::Extra<'s>>,
) -> Answer<'s> {
    if core.visits.borrow_mut().take(domain, code) {
        Answer::Redirect { lifetime: 0 }
    } else {
        core.metrics.visits_exhausted.inc();
        target.exhausted(extra)
    }
}

/// A code the domain does not have: its not-found redirect (302), else 404.
#[inline]
fn not_found(
    pre: &crate::http::response::Preformatted,
    domain: &DomainEntry,
    head_only: bool,
    persist: Persist,
    hsts: &[u8],
    out: &mut Vec<u8>,
    keep: bool,
) -> (u16, bool) {
    match &domain.not_found_redirect {
        Some(url) => {
            let status = snapshots::RedirectStatus::Found;
            pre.redirect_with(out, status, url, b"", persist, i64::MAX, hsts);
            (302, keep)
        }
        None => {
            pre.canned_with(out, Canned::NotFound, head_only, persist, hsts);
            (404, keep)
        }
    }
}

/// A protected link found for a request, with what its answers need.
struct GatedLink<'s> {
    domain: &'s DomainEntry,
    code: &'s [u8],
    target: Target<'s>,
    hsts: &'s [u8],
}

/// The protected link a `POST` is for, if it is one that redirects now:
/// the GET path's domain and code resolution, without its answers (every
/// other `POST` is a `405`).
#[cold]
#[inline(never)]
fn gated_post<'s, 'c>(
    core: &Core,
    state: &'s super::state::CoreState,
    req: &Request<'c>,
    secure: bool,
    decoded: &'c mut [u8; MAX_CODE_LEN],
) -> Option<(&'s DomainEntry, &'c [u8], Target<'s>)> {
    let mut host_buf = [0u8; MAX_DOMAIN_LEN + 1];
    let host = match req.host.is_empty() {
        true => HostName::Address,
        false => normalize_host(req.host, &mut host_buf),
    };
    let domain = state.domains().resolve(host)?;
    if domain.redirect_https && !secure && !domain.name.is_empty() {
        return None;
    }
    let raw_code = req.path.strip_prefix(b"/")?;
    let code = request::percent_decode(raw_code, decoded).ok()?;
    let Lookup::Found(target) = state.lookup_in(domain.id, code) else {
        return None;
    };
    match link_answer(core, state, domain.id, code, &target, core.clock.secs()) {
        Answer::Redirect { .. } if target.has_password => Some((domain, code, target)),
        _ => None,
    }
}

/// The answer for a protected link: its redirect for a visitor with a pass
/// or the right password (`303` from the form, with a new pass), else the
/// form (`200`), the form again for a wrong password (`403`), or `429`.
/// Off the plain path: only links with a password.
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn gated(
    core: &Core,
    state: &super::state::CoreState,
    req: &Request<'_>,
    peer: IpAddr,
    now_ms: u64,
    secure: bool,
    link: GatedLink<'_>,
    persist: Persist,
    out: &mut Vec<u8>,
    keep: bool,
) -> (u16, bool) {
    use super::gate::{Decision, Visitor, pass_cookie};
    let pre = core.pre.borrow();
    let head_only = req.method == Method::Head;
    let post = req.method == Method::Post;
    let GatedLink {
        domain,
        code,
        target,
        hsts,
    } = link;
    let Some(verifier) = state.password_in(domain.id, code) else {
        // Flagged without a verifier: opening and decoding refuse that.
        pre.canned_with(out, Canned::NotFound, head_only, persist, hsts);
        return (404, keep);
    };
    if post && req.form.is_none() {
        if req.form_pending {
            return (AWAIT_BODY, keep);
        }
        pre.canned(out, Canned::PayloadTooLarge, false, Persist::Close);
        return (413, false);
    }
    let now = core.clock.secs();
    let visitor = Visitor {
        domain: domain.id,
        code,
        client: self::visitor(core, req, peer),
        form: req.form,
        post,
        cookie: req.cookie,
        now,
        now_ms: now_ms.max(1),
    };
    let decision = core.gate.borrow_mut().decide(verifier, &visitor);
    let page = |out: &mut Vec<u8>, status_line: &[u8], body: &[u8], extra: &[u8]| {
        pre.html(out, status_line, body, head_only, persist, extra)
    };
    match decision {
        Decision::Pass | Decision::Admitted
            if target.limited && !core.visits.borrow_mut().take(domain.id, code) =>
        {
            // The password let the visitor through, but this core has no
            // visit of the link left: the link's expired answer.
            core.metrics.visits_exhausted.inc();
            let extra = state.extra_in(domain.id, code);
            match target.exhausted(extra) {
                Answer::Expired { location } => {
                    let found = snapshots::RedirectStatus::Found;
                    pre.redirect_with(out, found, location, b"", persist, i64::MAX, hsts);
                    capture(
                        core,
                        req,
                        peer,
                        (code, target.org_id, 0),
                        &domain.name,
                        302,
                        now_ms,
                    );
                    (302, keep)
                }
                _ => {
                    let status = core.gone.status();
                    capture(
                        core,
                        req,
                        peer,
                        (code, target.org_id, 0),
                        &domain.name,
                        status,
                        now_ms,
                    );
                    pre.canned_with(out, core.gone, head_only, persist, hsts);
                    (status, keep)
                }
            }
        }
        Decision::Pass | Decision::Admitted => {
            let query = if target.forward_query { req.query } else { b"" };
            let (location, status, rule) = match target.has_rules {
                true => match choose_rule(core, state, req, peer, (domain.id, code), now) {
                    Some(chosen) => (chosen.location, chosen.status, chosen.rule),
                    None => (target.location, target.status, 0),
                },
                false => (target.location, target.status, 0),
            };
            let answered = if decision == Decision::Admitted {
                // Rare (a person typed a password): a small allocation is fine.
                let mut extra = Vec::with_capacity(160 + hsts.len());
                pass_cookie(verifier, &visitor, req.path, secure, &mut extra);
                extra.extend_from_slice(hsts);
                pre.see_other(out, location, query, persist, &extra);
                303
            } else {
                // Depends on the cookie: never cached.
                pre.redirect_with(out, status, location, query, persist, 0, hsts);
                status.code()
            };
            // The click carries the redirect's own status, as every
            // redirect's does, so stats count it.
            capture(
                core,
                req,
                peer,
                (code, target.org_id, rule),
                &domain.name,
                status.code(),
                now_ms,
            );
            (answered, keep)
        }
        Decision::Form => {
            page(out, b"HTTP/1.1 200 OK\r\n", super::gate::PAGE_PROMPT, hsts);
            (200, keep)
        }
        Decision::Wrong => {
            page(
                out,
                b"HTTP/1.1 403 Forbidden\r\n",
                super::gate::PAGE_WRONG,
                hsts,
            );
            (403, keep)
        }
        Decision::Limited { retry_after } => {
            let mut extra = Vec::with_capacity(32 + hsts.len());
            extra.extend_from_slice(b"Retry-After: ");
            crate::http::response::push_decimal(&mut extra, u64::from(retry_after));
            extra.extend_from_slice(b"\r\n");
            extra.extend_from_slice(hsts);
            page(
                out,
                b"HTTP/1.1 429 Too Many Requests\r\n",
                super::gate::PAGE_LIMITED,
                &extra,
            );
            (429, keep)
        }
    }
}

/// Which of a link's rules or split variants serves this request (`None`:
/// the link's own target). Off the plain path: only links with rules.
#[cold]
#[inline(never)]
fn choose_rule<'s>(
    core: &Core,
    state: &'s super::state::CoreState,
    req: &Request<'_>,
    peer: IpAddr,
    (domain, code): (u32, &[u8]),
    now: i64,
) -> Option<super::rules::Chosen<'s>> {
    let rules = state.rules_in(domain, code)?;
    let client = visitor(core, req, peer);
    let visit = super::rules::Visit {
        code,
        user_agent: req.user_agent,
        accept_language: req.accept_language,
        query: req.query,
        client,
        client_prefix: cut(client, core.ipv4_prefix, core.ipv6_prefix),
        now,
    };
    super::rules::choose(rules, &visit, core.geoip.as_deref(), || {
        core.metrics.rules_without_geoip.inc()
    })
}

/// The visitor's address: the peer, or what a trusted proxy's header says.
#[inline]
fn visitor(core: &Core, req: &Request<'_>, peer: IpAddr) -> IpAddr {
    let header = match core.client_ip_header {
        ClientIpHeader::XForwardedFor => req.x_forwarded_for,
        ClientIpHeader::Forwarded => req.forwarded,
        ClientIpHeader::XRealIp => req.x_real_ip,
    };
    client_ip(peer, &core.proxies, core.client_ip_header, header)
}

/// Records a click for a redirect, or for an expired or disabled link, when
/// capture is on; the client address is cut to its kept prefix here, so no
/// full address leaves the process. `link`: the code, its owner's org, and
/// the rule that served it (0: the link's own target).
#[inline]
fn capture(
    core: &Core,
    req: &Request<'_>,
    peer: IpAddr,
    (code, org_id, rule): (&[u8], u64, u8),
    domain: &[u8],
    status: u16,
    now_ms: u64,
) {
    let mut clicks = core.clicks.borrow_mut();
    if let Some(buffer) = clicks.as_mut() {
        let ip = cut(visitor(core, req, peer), core.ipv4_prefix, core.ipv6_prefix);
        buffer.record(|event_id| ClickEvent {
            event_id,
            ts_ms: now_ms,
            status,
            ip,
            code,
            user_agent: req.user_agent,
            referrer: req.referer,
            accept_language: req.accept_language,
            host: req.host,
            domain,
            org_id,
            rule: u16::from(rule),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clicks::ClickBuffer;
    use crate::config::Config;
    use crate::core::state::DeltaRecord;
    use crate::metrics::CoreMetrics;
    use crate::test_alloc;
    use snapshots::delta::LinkDelta;
    use snapshots::{Link, Snapshot, SnapshotBuilder};
    use std::sync::Arc;

    /// The request path (parse, lookup in deltas and snapshot, answer,
    /// click record) allocates nothing once the buffers have their size.
    #[test]
    fn request_path_does_not_allocate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(1);
        builder
            .push(Link {
                forward_query: true,
                ..Link::new("abc", "https://example.com/a?x=1#f")
            })
            .unwrap();
        builder
            .push(Link::new("old", "https://example.com/old"))
            .unwrap();
        // Rules that all fail, then a split: every condition is evaluated.
        use snapshots::rules::{Conditions, Device, QueryCondition, Rule, Variant};
        let rule = |when: Conditions| Rule {
            when,
            target: "https://example.com/rule".into(),
            status: None,
        };
        builder
            .push(Link {
                rules: vec![
                    rule(Conditions {
                        device: vec![Device::Mobile],
                        ..Conditions::default()
                    }),
                    rule(Conditions {
                        language: vec!["fr".into()],
                        ..Conditions::default()
                    }),
                    rule(Conditions {
                        query: Some(QueryCondition {
                            name: "r%20f".into(),
                            equals: Some("a b".into()),
                        }),
                        ..Conditions::default()
                    }),
                    rule(Conditions {
                        country: vec!["DE".into()],
                        ..Conditions::default()
                    }),
                ],
                split: ["https://example.com/a", "https://example.com/b"]
                    .map(|target| Variant {
                        target: target.into(),
                        weight: 50,
                        status: None,
                    })
                    .to_vec(),
                ..Link::new("ruled", "https://example.com/r")
            })
            .unwrap();
        builder.write_to(&path).unwrap();
        let snapshot = Arc::new(Snapshot::open(&path).unwrap());
        let (tx, _rx) = crate::clicks::handoff::channel(4).unwrap();
        let (_recycle_tx, recycle_rx) = crossbeam_channel::bounded(4);
        let metrics = Arc::new(CoreMetrics::new());
        let clicks = ClickBuffer::new(
            "n",
            [7; 8],
            0,
            10_000,
            1_000_000,
            tx,
            recycle_rx,
            metrics.clone(),
        );
        let config = Config {
            trusted_proxies: vec!["192.0.2.0/24".into()],
            ..Config::default()
        };
        let geoip = crate::geoip::GeoIp::open(&testkit::fixtures::geoip_city()).unwrap();
        let core = Core {
            geoip: Some(Arc::new(geoip)),
            ..Core::new(0, &config, metrics, Some(snapshot), Some(clicks))
        };
        core.state
            .borrow_mut()
            .apply(Arc::new(DeltaRecord::from(LinkDelta::upsert(
                2,
                Link::new("new", "https://n/1"),
            ))));
        core.state
            .borrow_mut()
            .apply(Arc::new(DeltaRecord::from(LinkDelta::delete(3, "old"))));
        let requests: [&[u8]; 8] = [
            b"GET /abc?utm=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\nReferer: r\r\n\r\n",
            b"GET /ruled?x=1&r+f=a%20c HTTP/1.1\r\nHost: h\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0)\r\nAccept-Language: en, fr;q=0.5\r\nX-Forwarded-For: 81.2.69.142\r\n\r\n",
            b"HEAD /new HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /%61b%63 HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.77\r\n\r\n",
            b"GET /old HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /missing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /abc HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ];
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let mut out = Vec::with_capacity(64 * 1024);
        let run = |out: &mut Vec<u8>| {
            out.clear();
            for raw in requests {
                let Parse::Complete(req) = request::parse(raw, &core.limits) else {
                    panic!("parse");
                };
                let (status, _) = answer(&core, &req, peer, 1_700_000_000_000, false, out);
                count(&core, status);
            }
        };
        run(&mut out);
        let allocations = test_alloc::count(|| {
            for _ in 0..1000 {
                run(&mut out);
            }
        });
        assert_eq!(allocations, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("Location: https://example.com/a?x=1&utm=1#f"),
            "{text}"
        );
        assert!(
            text.contains("Location: https://example.com/a")
                || text.contains("Location: https://example.com/b"),
            "{text}"
        );
        // abc, ruled, new and %61b%63 are clicks; the deleted and the
        // unknown code are only counted.
        assert_eq!(core.metrics.clicks_captured.get(), 1001 * 4);
        assert_eq!(core.metrics.unknown_codes.get(), 1001 * 2);
    }

    /// `Strict-Transport-Security` only on secure (TLS) sessions; the 308 to
    /// https only on plain ones; a domain without HSTS sends none. The
    /// domain lookup, with its Host normalisation, allocates nothing.
    #[test]
    fn hsts_and_https_redirects_follow_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(1);
        builder
            .push_domain(snapshots::Domain {
                id: 3,
                verified: true,
                http_mode: snapshots::HttpMode::RedirectHttps,
                hsts_max_age: Some(600),
                ..snapshots::Domain::default_domain("go.brand.example")
            })
            .unwrap();
        builder
            .push(Link {
                domain: 3,
                ..Link::new("abc", "https://example.com/a")
            })
            .unwrap();
        builder
            .push(Link::new("abc", "https://example.com/default"))
            .unwrap();
        builder.write_to(&path).unwrap();
        let snapshot = Arc::new(Snapshot::open(&path).unwrap());
        let core = Core::new(
            0,
            &Config::default(),
            Arc::new(CoreMetrics::new()),
            Some(snapshot),
            None,
        );
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let text = |raw: &[u8], secure: bool| {
            let Parse::Complete(req) = request::parse(raw, &core.limits) else {
                panic!("parse");
            };
            let mut out = Vec::new();
            let (status, _) = answer(&core, &req, peer, 1, secure, &mut out);
            (status, String::from_utf8(out).unwrap())
        };
        let brand = b"GET /abc?x=1 HTTP/1.1\r\nHost: Go.Brand.Example.:80\r\n\r\n";
        let (status, plain) = text(brand, false);
        assert_eq!(status, 308, "{plain}");
        assert!(
            plain.contains("Location: https://go.brand.example/abc?x=1\r\n"),
            "{plain}"
        );
        assert!(!plain.contains("Strict-Transport-Security"), "{plain}");
        let (status, tls) = text(brand, true);
        assert_eq!(status, 301, "{tls}");
        assert!(tls.contains("Location: https://example.com/a\r\n"), "{tls}");
        assert!(
            tls.contains("Strict-Transport-Security: max-age=600\r\n"),
            "{tls}"
        );
        let missing = b"GET /zzz HTTP/1.1\r\nHost: go.brand.example\r\n\r\n";
        let (status, tls) = text(missing, true);
        assert_eq!(status, 404);
        assert!(tls.contains("Strict-Transport-Security: max-age=600\r\n"));
        let default = b"GET /abc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let (status, tls) = text(default, true);
        assert_eq!(status, 301);
        assert!(!tls.contains("Strict-Transport-Security"), "{tls}");

        let Parse::Complete(req) = request::parse(brand, &core.limits) else {
            panic!("parse");
        };
        let mut out = Vec::with_capacity(4096);
        answer(&core, &req, peer, 1, true, &mut out);
        let allocations = test_alloc::count(|| {
            for _ in 0..100 {
                out.clear();
                answer(&core, &req, peer, 1, true, &mut out);
                out.clear();
                answer(&core, &req, peer, 1, false, &mut out);
            }
        });
        assert_eq!(allocations, 0);
    }
}
