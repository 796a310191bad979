//! Link events, recorded in the link write's own transaction.
//!
//! `links::store` calls [`record_link_events`] wherever it writes outbox
//! rows, so every path that changes a link (single, bulk, import,
//! dashboard, the purge of expired links) records its events the same way,
//! and only when it commits; so does the deletion of a domain with its
//! links (`domains::store::delete`: engines drop those with the domain, so
//! they have no outbox row of their own). `link.clicked` events come from
//! the enriched clicks ([`super::clicks`]) through [`insert_events`]. One statement inserts the events of the
//! changed links whose organization has a matching active endpoint and one
//! delivery per such endpoint; a link of an organization without endpoints
//! costs an index probe. The type follows the row: deleted (`deleted_at`
//! set) is `link.deleted`, a first version is `link.created`, anything else
//! `link.updated`. A bulk request that creates and then changes one link
//! records one event, its final state (as it records one outbox change).

use crate::links::model::LinkRow;
use serde_json::Value;
use sqlx::PgConnection;

/// The event type of a link write that left `row`.
pub fn link_event_type(row: &LinkRow) -> &'static str {
    if row.deleted_at.is_some() {
        "link.deleted"
    } else if row.version == 1 {
        "link.created"
    } else {
        "link.updated"
    }
}

/// The event's `data`: the link as the API shows it, its `short_url`
/// relative until sent ([`crate::links::model::absolute_short_url`]).
pub fn link_event_data(row: &LinkRow) -> Value {
    let mut json = row.to_json("");
    json.short_url = row.relative_short_url();
    let mut data = serde_json::to_value(json).expect("a link serialises");
    if let Value::Object(map) = &mut data {
        // Read-time figures, not part of the write.
        map.remove("clicks");
        map.remove("last_click_at");
    }
    data
}

/// The events and deliveries of the link writes that left `rows`; call it
/// in the same transaction.
pub async fn record_link_events(conn: &mut PgConnection, rows: &[LinkRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut orgs = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        orgs.push(row.org_id);
        types.push(link_event_type(row));
        data.push(sqlx::types::Json(link_event_data(row)));
    }
    insert_events(conn, &orgs, &types, &data).await
}

/// Inserts events (`orgs[i]`, `types[i]`, `data[i]`) for which an active
/// endpoint of the organization subscribes, with a delivery to each such
/// endpoint.
pub async fn insert_events(
    conn: &mut PgConnection,
    orgs: &[i64],
    types: &[&str],
    data: &[sqlx::types::Json<Value>],
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::jsonb[])
                      WITH ORDINALITY AS v(org_id, type, data, ord)),
              ev AS (INSERT INTO webhook_events (org_id, type, data)
                     SELECT v.org_id, v.type, v.data FROM v
                      WHERE EXISTS (SELECT 1 FROM webhook_endpoints e
                                     WHERE e.org_id = v.org_id AND e.active
                                       AND v.type = ANY(e.events))
                      ORDER BY v.ord
                     RETURNING id, org_id, type)
         INSERT INTO webhook_deliveries (event_id, endpoint_id)
         SELECT ev.id, e.id FROM ev
           JOIN webhook_endpoints e
             ON e.org_id = ev.org_id AND e.active AND ev.type = ANY(e.events)",
    )
    .bind(orgs)
    .bind(types)
    .bind(data)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
