-- The control plane's schema. PostgreSQL is the source of truth for links;
-- engines converge to it through link_outbox (the change stream) and snapshots.

CREATE TABLE organizations (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Only a SHA-256 of the secret is stored. The secret is 190 bits of randomness,
-- so a fast hash is enough: nobody can brute-force that space, and a slow
-- password hash would cost CPU on every request for no gain.
CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations(id),
    name         TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL UNIQUE,          -- visible part, e.g. "sk_Ab12Cd34"
    secret_hash  BYTEA NOT NULL UNIQUE,         -- sha256(full key)
    scopes       TEXT[] NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org ON api_keys (org_id, id);

-- Codes are never reused, even after a soft delete: an old short link must not
-- start pointing somewhere new. Hence UNIQUE over all rows, deleted or not.
CREATE TABLE links (
    id            BIGSERIAL PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    org_id        BIGINT NOT NULL REFERENCES organizations(id),
    target        TEXT NOT NULL,
    status        SMALLINT NOT NULL DEFAULT 301 CHECK (status IN (301, 302, 307, 308)),
    expires_at    TIMESTAMPTZ,
    disabled      BOOLEAN NOT NULL DEFAULT false,
    forward_query BOOLEAN NOT NULL DEFAULT false,
    tags          TEXT[] NOT NULL DEFAULT '{}',
    title         TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ,
    version       BIGINT NOT NULL DEFAULT 1,     -- bumped on every write; the ETag
    seq           BIGINT NOT NULL                -- outbox sequence of the last write
);
CREATE INDEX links_org_live ON links (org_id, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX links_tags ON links USING GIN (tags);

-- The outbox sequence. Every link-writing transaction takes its sequence with
-- `UPDATE outbox_counter SET seq = seq + 1 RETURNING seq`, which holds this
-- row's lock until commit. So sequences are handed out in commit order, with
-- no gaps: a reader that sees seq N knows 1..N are all committed. A plain
-- SEQUENCE would not give that (nextval order is not commit order), and a
-- snapshot taken at "max seq = S" could miss an uncommitted change below S
-- that engines would then skip forever. The cost is that link writes commit
-- one at a time, which a control plane's write rate easily affords.
CREATE TABLE outbox_counter (
    id   BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    seq  BIGINT NOT NULL
);
INSERT INTO outbox_counter (id, seq) VALUES (true, 0);

-- One row per link change: the snapshots::delta::LinkDelta JSON that the relay
-- publishes verbatim.
CREATE TABLE link_outbox (
    seq         BIGINT PRIMARY KEY,
    code        TEXT NOT NULL,
    delta       BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- How far the relay has published (acknowledged by JetStream).
CREATE TABLE relay_state (
    id             BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    published_seq  BIGINT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO relay_state (id, published_seq) VALUES (true, 0);

-- Idempotency-Key replays: the first response for 24 hours.
CREATE TABLE idempotency_keys (
    org_id        BIGINT NOT NULL REFERENCES organizations(id),
    key           TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        SMALLINT,
    response      JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);

-- Every write, who did it, and what it was.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    org_id      BIGINT REFERENCES organizations(id),
    api_key_id  BIGINT REFERENCES api_keys(id),
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     JSONB NOT NULL DEFAULT '{}',
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org ON audit_log (org_id, id DESC);

-- Hosts nobody may link to; a host also blocks its subdomains.
CREATE TABLE blocked_hosts (
    host        TEXT PRIMARY KEY,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Snapshot generations written to --snapshot-dir.
CREATE TABLE snapshot_generations (
    id          BIGSERIAL PRIMARY KEY,
    seq         BIGINT NOT NULL,
    path        TEXT NOT NULL,
    links       BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
