-- Webhooks (issue 15, control/src/webhooks): an organization's endpoints,
-- the events to send them, and one delivery row per (event, endpoint).
-- Events and deliveries of link writes are inserted in the link write's own
-- transaction (links::store), so a committed write always has its
-- deliveries and a rolled-back one never does; the rows are the queue's
-- whole truth, so nothing is lost when control restarts.
CREATE TABLE webhook_endpoints (
    id             BIGSERIAL PRIMARY KEY,
    org_id         BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    -- A subset of link.created, link.updated, link.deleted, link.clicked.
    events         TEXT[] NOT NULL,
    active         BOOLEAN NOT NULL DEFAULT true,
    -- The signing secret, sealed (AES-256-GCM under webhook_key_file, the
    -- additional data `webhook-secret:<id>`): the server must recover it to
    -- sign, so it cannot be a hash; a dump of the table alone signs nothing.
    secret_sealed  BYTEA NOT NULL,
    -- The circuit breaker: failures in a row; while `open_until` is in the
    -- future no delivery to this endpoint is attempted; once it has passed,
    -- one probe is (half-open), and a success closes the breaker again.
    failures       INT NOT NULL DEFAULT 0,
    open_until     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, id);

-- One event: its public id (stable across retries and endpoints), type and
-- body's `data`.
CREATE TABLE webhook_events (
    id          BIGSERIAL PRIMARY KEY,
    public_id   TEXT NOT NULL UNIQUE
                DEFAULT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
    org_id      BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type        TEXT NOT NULL
                CHECK (type IN ('link.created', 'link.updated', 'link.deleted', 'link.clicked')),
    data        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One event to one endpoint. `pending` rows are the queue, due at
-- `next_attempt_at`; a worker claims a row by moving `next_attempt_at` a
-- lease ahead (FOR UPDATE SKIP LOCKED), so two instances never send the same
-- attempt at once, and a worker that dies mid-attempt leaves the row to be
-- tried again once the lease has passed. `dead` rows are the dead letters.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    event_id         BIGINT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id      BIGINT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INT NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The last attempt's HTTP status (none: no answer) and error.
    last_status      INT,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (endpoint_id, id DESC)
    WHERE state = 'dead';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
