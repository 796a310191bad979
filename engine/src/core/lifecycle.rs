//! What a link answers when it is not a plain redirect: disabled, expired,
//! or with lifecycle extras (`valid_since`, `expired_url`).
//!
//! The request path tests one condition for a link without any of these
//! ([`Target::redirects_plainly`]: the disabled/extras flags and the
//! expiry it already tested before extras existed); everything here runs only
//! for the links that need it, so they cost nothing to the others.
//!
//! - Before `valid_since` a link answers exactly as a missing code does
//!   (the domain's not-found redirect, else `404` with `no-store`): a link
//!   scheduled for a launch must not reveal that it exists, nor where it will
//!   go, and nothing may cache the answer past the launch. It records no click.
//! - After `expires_at`, a link with an `expired_url` redirects there with a
//!   `302` (`private, no-store`: the link may be edited again, and nothing
//!   cached may outlive that), recorded as a click with status 302; one
//!   without answers the configured gone status, as before.
//! - In between, the link redirects as usual, its permanent redirects
//!   cached at most until `expires_at`.

use snapshots::RedirectStatus;

/// A link found by a lookup, borrowed from the snapshot or the delta map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub location: &'a [u8],
    pub status: RedirectStatus,
    pub expires_at: i64,
    pub disabled: bool,
    pub forward_query: bool,
    /// The link has lifecycle extras (`CoreState::extra_in`).
    pub has_extra: bool,
    /// The link has redirect rules or a split (`CoreState::rules_in`).
    pub has_rules: bool,
    /// The link is password-protected (`CoreState::password_in`).
    pub has_password: bool,
    /// The link has `max_visits`: it redirects only while this core has
    /// leased visits of it (`super::visits`).
    pub limited: bool,
    /// The organisation owning the link, for its click record (0: unknown).
    pub org_id: u64,
}

impl Target<'_> {
    /// Whether the link simply redirects at `now` (unix seconds): not
    /// disabled, not expired, no extras, no rules, no password, no visit
    /// limit. The others take
    /// [`Target::answer`]'s slower path.
    #[inline]
    pub fn redirects_plainly(&self, now: i64) -> bool {
        !(self.disabled
            || self.has_extra
            || self.has_rules
            || self.has_password
            || self.limited
            || (self.expires_at != 0 && now >= self.expires_at))
    }
}

/// A link's extras as a core reads them (from the snapshot or a delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extra<'a> {
    /// Unix seconds; 0: none.
    pub valid_since: i64,
    /// Empty: none.
    pub expired_url: &'a [u8],
}

/// What a link answers at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Its redirect, cacheable (when permanent) for at most `lifetime`
    /// seconds.
    Redirect { lifetime: i64 },
    /// Expired, to its expired URL (302, not cacheable).
    Expired { location: &'a [u8] },
    /// Not valid yet: as a missing code.
    NotYet,
    /// Disabled, or expired without an expired URL.
    Gone,
}

impl<'a> Target<'a> {
    /// The answer at `now` of a link that does not redirect plainly;
    /// `extra` is the link's extras when it has some.
    pub fn answer(&self, extra: Option<Extra<'a>>, now: i64) -> Answer<'a> {
        let extra = extra.unwrap_or_default();
        // First, so a disabled link scheduled for later is not revealed
        // either.
        if extra.valid_since != 0 && now < extra.valid_since {
            return Answer::NotYet;
        }
        if self.disabled {
            return Answer::Gone;
        }
        if self.expires_at != 0 && now >= self.expires_at {
            return match extra.expired_url {
                b"" => Answer::Gone,
                location => Answer::Expired { location },
            };
        }
        Answer::Redirect {
            lifetime: self.lifetime(now),
        }
    }

    /// What a limited link answers once this core has none of its visits
    /// left: what it answers once expired (its expired URL, else gone).
    pub fn exhausted(&self, extra: Option<Extra<'a>>) -> Answer<'a> {
        match extra.unwrap_or_default().expired_url {
            b"" => Answer::Gone,
            location => Answer::Expired { location },
        }
    }

    /// How long a permanent redirect may be cached: until the expiry.
    #[inline]
    pub fn lifetime(&self, now: i64) -> i64 {
        match self.expires_at {
            0 => i64::MAX,
            at => at.saturating_sub(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(expires_at: i64, disabled: bool) -> Target<'static> {
        Target {
            location: b"https://x.y/",
            status: RedirectStatus::MovedPermanently,
            expires_at,
            disabled,
            forward_query: false,
            has_extra: true,
            has_rules: false,
            has_password: false,
            limited: false,
            org_id: 0,
        }
    }

    #[test]
    fn each_phase_of_a_link() {
        let extra = Extra {
            valid_since: 100,
            expired_url: b"https://x.y/over",
        };
        let link = target(200, false);
        assert_eq!(link.answer(Some(extra), 99), Answer::NotYet);
        assert_eq!(
            link.answer(Some(extra), 100),
            Answer::Redirect { lifetime: 100 }
        );
        assert_eq!(
            link.answer(Some(extra), 200),
            Answer::Expired {
                location: b"https://x.y/over"
            }
        );
        let no_url = Extra {
            expired_url: b"",
            ..extra
        };
        assert_eq!(link.answer(Some(no_url), 250), Answer::Gone);
        // Disabled: gone once valid, still unknown before.
        let off = target(0, true);
        assert_eq!(off.answer(Some(extra), 99), Answer::NotYet);
        assert_eq!(off.answer(Some(extra), 150), Answer::Gone);
        // No extras: the old rules.
        assert_eq!(target(200, false).answer(None, 300), Answer::Gone);
        assert_eq!(
            target(0, false).answer(None, 300),
            Answer::Redirect { lifetime: i64::MAX }
        );
    }
}
