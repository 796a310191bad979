//! The lease transactions: each grant and each return is one PostgreSQL
//! transaction on the link's `link_visits` row, taken `FOR UPDATE`, so
//! concurrent grants (several engines, several control instances) queue on
//! it and `granted + lease <= max_visits` holds whatever their order.

use sqlx::PgPool;
use time::Duration;

/// A lease as granted: its id and visits (`0, 0`: nothing granted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub lease: i64,
    pub visits: i32,
}

/// Grants `node` up to `want` visits of `(domain, code)` for `ttl`: what is
/// left of its `max_visits` after every lease not given back. Nothing for a
/// link that is unknown, deleted or unlimited.
pub async fn grant(
    db: &PgPool,
    node: &str,
    domain: u32,
    code: &str,
    want: u32,
    ttl: Duration,
) -> sqlx::Result<Granted> {
    let none = Granted {
        lease: 0,
        visits: 0,
    };
    if want == 0 {
        return Ok(none);
    }
    let mut tx = db.begin().await?;
    let link: Option<(i64, Option<i32>)> = sqlx::query_as(
        "SELECT id, max_visits FROM links
          WHERE domain_id = $1 AND code = $2 AND deleted_at IS NULL",
    )
    .bind(i64::from(domain))
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((link_id, Some(_))) = link else {
        return Ok(none);
    };
    sqlx::query("INSERT INTO link_visits (link_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(link_id)
        .execute(&mut *tx)
        .await?;
    // The row lock every grant and return of this link queues on; the limit
    // is read again under it (a write may have changed it meanwhile).
    let (granted, max): (i64, Option<i32>) = sqlx::query_as(
        "SELECT v.granted, l.max_visits FROM link_visits v JOIN links l ON l.id = v.link_id
          WHERE v.link_id = $1 FOR UPDATE OF v",
    )
    .bind(link_id)
    .fetch_one(&mut *tx)
    .await?;
    let left = i64::from(max.unwrap_or(0).max(0)) - granted;
    let visits = left.min(share(left)).min(i64::from(want)).max(0) as i32;
    if visits == 0 {
        return Ok(none);
    }
    sqlx::query("UPDATE link_visits SET granted = granted + $2 WHERE link_id = $1")
        .bind(link_id)
        .bind(i64::from(visits))
        .execute(&mut *tx)
        .await?;
    let lease: i64 = sqlx::query_scalar(
        "INSERT INTO visit_leases (link_id, node, visits, expires_at)
         VALUES ($1, $2, $3, now() + $4) RETURNING id",
    )
    .bind(link_id)
    .bind(node)
    .bind(visits)
    .bind(ttl)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Granted { lease, visits })
}

/// What is left that one lease may take at most: half of it (rounded up),
/// or all of a small rest. A lease is what an engine takes with it if it
/// dies, and what other engines cannot serve until it comes back, so no
/// one asker holds all of a large rest; the cost is a few more rounds near
/// the end of a budget.
fn share(left: i64) -> i64 {
    match left <= SMALL_REST {
        true => left,
        false => (left + 1) / 2,
    }
}

/// A rest this small goes whole to one lease.
const SMALL_REST: i64 = 64;

/// Closes `node`'s lease `lease`, crediting its `unused` visits back to the
/// link's budget, at most the visits its row holds (an engine cannot give
/// back more than it was leased). A lease already returned (a repeated
/// request) or another node's changes nothing. Returns the visits
/// credited.
pub async fn give_back(db: &PgPool, node: &str, lease: i64, unused: u32) -> sqlx::Result<i64> {
    let mut tx = db.begin().await?;
    let closed: Option<(i64, i32)> = sqlx::query_as(
        "DELETE FROM visit_leases WHERE id = $1 AND node = $2 RETURNING link_id, visits",
    )
    .bind(lease)
    .bind(node)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((link_id, visits)) = closed else {
        return Ok(0);
    };
    let credit = i64::from(unused).min(i64::from(visits.max(0)));
    if credit > 0 {
        sqlx::query(
            "UPDATE link_visits SET granted = greatest(granted - $2, 0) WHERE link_id = $1",
        )
        .bind(link_id)
        .bind(credit)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(credit)
}

/// Moves `visits` of `node`'s lease `from` into its lease `into` of the same
/// link (the engine serves them from `into` now): the budget is unchanged,
/// the rows say which lease holds them. A lease moves once: a repeated move,
/// one between two links or nodes, or of more than `from` holds changes
/// nothing. Returns whether it moved.
pub async fn move_visits(
    db: &PgPool,
    node: &str,
    from: i64,
    into: i64,
    visits: u32,
) -> sqlx::Result<bool> {
    if visits == 0 || from == into {
        return Ok(false);
    }
    let mut tx = db.begin().await?;
    let taken: Option<i64> = sqlx::query_scalar(
        "UPDATE visit_leases SET visits = visits - $4, moved_into = $3
          WHERE id = $1 AND node = $2 AND moved_into IS NULL AND visits >= $4
          RETURNING link_id",
    )
    .bind(from)
    .bind(node)
    .bind(into)
    .bind(i64::from(visits) as i32)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(link_id) = taken else {
        return Ok(false);
    };
    let added = sqlx::query(
        "UPDATE visit_leases SET visits = visits + $4
          WHERE id = $1 AND node = $2 AND link_id = $3",
    )
    .bind(into)
    .bind(node)
    .bind(link_id)
    .bind(i64::from(visits) as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 0 {
        // `into` is gone or not this link's: leave both rows as they were.
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Forgets leases that expired more than `after` ago without being given
/// back: their visits stay counted (the engine may have served them before
/// it went away). Returns how many.
pub async fn sweep(db: &PgPool, after: Duration) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM visit_leases WHERE expires_at < now() - $1")
            .bind(after)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// `max_visits` and what is left of it (not leased), by link id, for the
/// link JSON.
pub async fn visits_left(db: &PgPool, link_ids: &[i64]) -> sqlx::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT l.id, greatest(l.max_visits - coalesce(v.granted, 0), 0)
           FROM links l LEFT JOIN link_visits v ON v.link_id = l.id
          WHERE l.id = ANY($1) AND l.max_visits IS NOT NULL",
    )
    .bind(link_ids)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_takes_at_most_half_of_a_large_rest() {
        assert_eq!(share(1000), 500);
        assert_eq!(share(65), 33);
        assert_eq!(share(64), 64);
        assert_eq!(share(1), 1);
        assert_eq!(share(0), 0);
    }
}
