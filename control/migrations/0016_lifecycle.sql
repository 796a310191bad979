-- Link lifecycle (issue 16): a link may start later (valid_since: before it,
-- engines answer as for a missing code) and redirect somewhere else once
-- expired (expired_url: a 302 there instead of 410).
ALTER TABLE links ADD COLUMN valid_since TIMESTAMPTZ;
ALTER TABLE links ADD COLUMN expired_url TEXT;
ALTER TABLE links ADD CONSTRAINT links_valid_since_before_expiry
    CHECK (valid_since IS NULL OR expires_at IS NULL OR valid_since < expires_at);

-- Purging (control's purge task) deletes soft-deleted links, and expired
-- links without an expired_url, some time after; these indexes find them.
CREATE INDEX links_purge_deleted ON links (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX links_purge_expired ON links (expires_at)
    WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expired_url IS NULL;

-- A purged link's code stays taken: an old short link must never start
-- pointing somewhere new (the rule `links`' unique index kept while the row
-- existed). Inserts check this table too.
CREATE TABLE retired_codes (
    domain_id  BIGINT NOT NULL,
    code       TEXT NOT NULL,
    org_id     BIGINT NOT NULL,
    retired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, code)
);
