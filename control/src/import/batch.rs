//! Writes one batch of checked rows in one transaction: the links with one
//! multi-row `INSERT`, their outbox rows with another, one audit entry, the
//! problems, and the progress record.
//!
//! **One write per link.** Single writes insert a link, then take the
//! outbox counter last and stamp the link's `seq` (an `UPDATE`). For a
//! million links that second write would double the work (every index of
//! `links` again, the trigram ones included), so a batch takes its block of
//! sequences first and inserts each link with its final `seq`. That needs
//! the codes' clashes known before: a `SELECT` of the batch's codes finds
//! them (a clash is reported, never overwritten; a random code that is taken
//! is drawn again), then the counter is bumped by exactly the number of
//! links to make, so the sequence stays gapless.
//!
//! Taking the counter first inverts the lock order of single writes (link
//! row, then counter). The batch therefore runs with a short `lock_timeout`:
//! if it would wait on a link row (a concurrent create of one of its codes,
//! which holds that row and waits for the counter) or on a code committed
//! since the `SELECT` (a unique violation), it gives up, rolls back and runs
//! again, instead of deadlocking with an API request. A retried batch
//! repeats nothing: all of it rolled back.

use super::check::Row;
use super::progress::{self, Problem};
use crate::audit::{Actor, audit};
use crate::links::model::{LINK_COLUMNS, LinkRow};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// How long a batch waits for a lock before it gives up and runs again.
const LOCK_TIMEOUT: &str = "250ms";
/// Runs of one batch before its error is the import's.
const ATTEMPTS: usize = 20;

/// What a batch is written for.
#[derive(Debug, Clone)]
pub struct Target {
    pub import_id: i64,
    pub org_id: i64,
    pub domain_id: i64,
    pub code_length: usize,
    pub file_name: String,
    pub format: &'static str,
}

/// One batch: rows that passed the checks, the lines that did not, and the
/// last line it covers.
#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Row>,
    pub problems: Vec<Problem>,
    pub last_line: u64,
}

fn invalid(line: u64, message: String) -> Problem {
    Problem {
        line: line as i64,
        kind: "invalid".into(),
        message,
    }
}

fn clash(line: u64, message: String) -> Problem {
    Problem {
        line: line as i64,
        kind: "clash".into(),
        message,
    }
}

/// A lock wait given up (`lock_timeout`) or a code committed meanwhile.
fn retryable(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<sqlx::Error>())
        .filter_map(|e| e.as_database_error())
        .any(|d| matches!(d.code().as_deref(), Some("55P03" | "23505")))
}

/// Writes `batch` after `done_line`; returns how many links it made.
pub async fn write(db: &PgPool, to: &Target, done_line: i64, batch: &Batch) -> anyhow::Result<u64> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = db.begin().await?;
        match write_in(&mut tx, to, done_line, batch).await {
            Ok(made) => {
                tx.commit().await?;
                return Ok(made);
            }
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                tracing::debug!(error = %e, attempt, "import batch runs again");
                tx.rollback().await?;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn write_in(
    tx: &mut PgConnection,
    to: &Target,
    done_line: i64,
    batch: &Batch,
) -> anyhow::Result<u64> {
    let mut problems = batch.problems.clone();
    sqlx::query(AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
    )))
    .execute(&mut *tx)
    .await?;
    // First, so a second run of the same import waits here.
    progress::advance(tx, to.import_id, done_line, batch.last_line as i64).await?;

    let rows = without_blocked(tx, batch.rows.clone(), &mut problems).await?;
    // A code twice in one batch: the later line clashes with the earlier.
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut pending: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(code) = &row.code {
            if let Some(first) = first_line.get(code) {
                problems.push(clash(
                    row.line,
                    format!("code {code:?} is taken (by line {first} of this file)"),
                ));
                continue;
            }
            first_line.insert(code.clone(), row.line);
        }
        pending.push(row);
    }
    let (rows, codes) = free_codes(tx, to, pending, &mut problems).await?;
    let links = insert(tx, to, &rows, &codes).await?;
    let made = links.len() as u64;
    crate::links::store::write_outbox(tx, &links).await?;
    sqlx::query("UPDATE imports SET imported = imported + $2 WHERE id = $1")
        .bind(to.import_id)
        .bind(made as i64)
        .execute(&mut *tx)
        .await?;
    progress::record_problems(tx, to.import_id, &problems).await?;
    audit(
        tx,
        Some(to.org_id),
        Actor::CLI,
        "links.import",
        &to.file_name,
        serde_json::json!({
            "format": to.format,
            "through_line": batch.last_line,
            "imported": made,
            "problems": problems.len(),
        }),
    )
    .await?;
    Ok(made)
}

/// The rows to insert and their codes: kept codes that are free, random
/// ones drawn until free. Kept codes that are taken become clashes.
async fn free_codes(
    tx: &mut PgConnection,
    to: &Target,
    rows: Vec<Row>,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let mut codes: Vec<String> = rows
        .iter()
        .map(|r| {
            r.code
                .clone()
                .unwrap_or_else(|| crate::codes::random_code(to.code_length))
        })
        .collect();
    let mut keep = vec![true; rows.len()];
    for _round in 0..8 {
        let taken: HashSet<String> = sqlx::query_scalar::<_, String>(
            // A purged link's code stays taken (`retired_codes`).
            "SELECT code FROM links WHERE domain_id = $1 AND code = ANY($2)
             UNION ALL
             SELECT code FROM retired_codes WHERE domain_id = $1 AND code = ANY($2)",
        )
        .bind(to.domain_id)
        .bind(&codes)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let mut drawn: HashSet<&str> = HashSet::new();
        let mut redraw = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let code = codes[i].as_str();
            let free = !taken.contains(code) && drawn.insert(code);
            match (free, &row.code) {
                (true, _) => {}
                (false, Some(_)) => {
                    problems.push(clash(
                        row.line,
                        format!("code {code:?} is already taken on this domain"),
                    ));
                    keep[i] = false;
                }
                (false, None) => redraw.push(i),
            }
        }
        if redraw.is_empty() {
            let (rows, codes) = rows
                .into_iter()
                .zip(codes)
                .zip(keep)
                .filter_map(|(rc, k)| k.then_some(rc))
                .unzip();
            return Ok((rows, codes));
        }
        for i in redraw {
            codes[i] = crate::codes::random_code(to.code_length);
        }
    }
    anyhow::bail!(
        "random codes of length {} keep colliding; the code space is nearly full",
        to.code_length
    )
}

/// Takes a block of sequences and inserts every row with its own; the
/// links as stored.
async fn insert(
    tx: &mut PgConnection,
    to: &Target,
    rows: &[Row],
    codes: &[String],
) -> anyhow::Result<Vec<LinkRow>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let n = rows.len() as i64;
    let base: i64 =
        sqlx::query_scalar("UPDATE outbox_counter SET seq = seq + $1 RETURNING seq - $1")
            .bind(n)
            .fetch_one(&mut *tx)
            .await?;
    let targets: Vec<&str> = rows.iter().map(|r| r.target.as_str()).collect();
    let titles: Vec<Option<&str>> = rows.iter().map(|r| r.title.as_deref()).collect();
    // Tags travel as one text per row, split in SQL (a 2-D array would need
    // equal lengths); U+001F cannot occur in a tag (control characters are
    // refused).
    let tags: Vec<String> = rows.iter().map(|r| r.tags.join("\u{1f}")).collect();
    let expires: Vec<Option<OffsetDateTime>> = rows.iter().map(|r| r.expires_at).collect();
    let since: Vec<Option<OffsetDateTime>> = rows.iter().map(|r| r.valid_since).collect();
    let expired: Vec<Option<&str>> = rows.iter().map(|r| r.expired_url.as_deref()).collect();
    let utm = |f: fn(&Row) -> Option<&str>| rows.iter().map(f).collect::<Vec<Option<&str>>>();
    // Rules and split travel as JSON text, cast in SQL (NULL: none).
    let json = |f: fn(&Row) -> Option<serde_json::Value>| {
        rows.iter()
            .map(|r| f(r).map(|v| v.to_string()))
            .collect::<Vec<Option<String>>>()
    };
    let sql = format!(
        "INSERT INTO links (code, org_id, target, title, tags, seq, domain_id,
                            expires_at, valid_since, expired_url,
                            utm_source, utm_medium, utm_campaign, utm_term, utm_content,
                            rules, split, max_visits)
         SELECT c, $2, t, ti,
                CASE WHEN tg = '' THEN '{{}}'::text[] ELSE string_to_array(tg, chr(31)) END,
                $7 + o, $3, ex, vs, eu, us, um, uc, ut, un, rl::jsonb, sp::jsonb, mv
           FROM unnest($1::text[], $4::text[], $5::text[], $6::text[],
                       $8::timestamptz[], $9::timestamptz[], $10::text[],
                       $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                       $16::text[], $17::text[], $18::int4[])
                WITH ORDINALITY AS v(c, t, ti, tg, ex, vs, eu, us, um, uc, ut, un, rl, sp, mv, o)
         RETURNING {LINK_COLUMNS}"
    );
    let links: Vec<LinkRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(codes)
        .bind(to.org_id)
        .bind(to.domain_id)
        .bind(&targets)
        .bind(&titles)
        .bind(&tags)
        .bind(base)
        .bind(&expires)
        .bind(&since)
        .bind(&expired)
        .bind(utm(|r| r.utm.source.as_deref()))
        .bind(utm(|r| r.utm.medium.as_deref()))
        .bind(utm(|r| r.utm.campaign.as_deref()))
        .bind(utm(|r| r.utm.term.as_deref()))
        .bind(utm(|r| r.utm.content.as_deref()))
        .bind(json(|r| crate::links::rules::column(&r.rules)))
        .bind(json(|r| crate::links::rules::column(&r.split)))
        .bind(
            rows.iter()
                .map(|r| r.max_visits)
                .collect::<Vec<Option<i32>>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
    anyhow::ensure!(
        links.len() == rows.len(),
        "the insert made {} of {} links",
        links.len(),
        rows.len()
    );
    Ok(links)
}

/// The outbox rows of new links, one multi-row insert and one notification.
/// Rows whose target host (or a parent) is blocklisted become problems.
async fn without_blocked(
    tx: &mut PgConnection,
    rows: Vec<Row>,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<Vec<Row>> {
    let hosts: HashSet<String> = rows
        .iter()
        .flat_map(|r| {
            std::iter::once(&r.host)
                .chain(&r.expired_host)
                .chain(&r.rule_hosts)
        })
        .flat_map(|h| crate::target::candidate_hosts(h))
        .collect();
    let hosts: Vec<String> = hosts.into_iter().collect();
    let blocked: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT host FROM blocked_hosts WHERE host = ANY($1)")
            .bind(&hosts)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    if blocked.is_empty() {
        return Ok(rows);
    }
    Ok(rows
        .into_iter()
        .filter(|r| {
            let hosts = std::iter::once(("target", &r.host))
                .chain(r.expired_host.iter().map(|h| ("expired_url", h)))
                .chain(
                    r.rule_hosts
                        .iter()
                        .map(|h| ("a rule's or variant's target", h)),
                );
            for (field, host) in hosts {
                if let Some(rule) = crate::target::candidate_hosts(host)
                    .into_iter()
                    .find(|h| blocked.contains(h))
                {
                    problems.push(invalid(
                        r.line,
                        format!("{field} host {host} is blocklisted ({rule})"),
                    ));
                    return false;
                }
            }
            true
        })
        .collect())
}
