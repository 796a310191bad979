-- Visit limits (issue 16, docs/max-visits.md). A link with max_visits redirects
-- at most that many times in all, across every engine; engines serve a limited
-- link only from visits control leased to them.
ALTER TABLE links ADD COLUMN max_visits INTEGER
    CHECK (max_visits IS NULL OR max_visits BETWEEN 1 AND 1000000000);

-- A limited link's budget: visits handed to engines in leases and not given
-- back. Granting takes this row FOR UPDATE and keeps granted <= max_visits
-- (control/src/leases/store.rs); a return subtracts the unused visits. Its
-- own small table so leases never rewrite (or lock) the links row.
CREATE TABLE link_visits (
    link_id BIGINT PRIMARY KEY REFERENCES links(id) ON DELETE CASCADE,
    granted BIGINT NOT NULL DEFAULT 0 CHECK (granted >= 0)
);

-- Leases outstanding: granted, not yet returned. A returned lease's row is
-- deleted in the transaction that credits its unused visits back; a lease an
-- engine never returns (it died, or was cut off) keeps its visits counted as
-- served (it may have served them) and its row is swept an hour after it
-- expired.
CREATE TABLE visit_leases (
    id         BIGSERIAL PRIMARY KEY,
    link_id    BIGINT NOT NULL REFERENCES links(id) ON DELETE CASCADE,
    node       TEXT NOT NULL,
    visits     INTEGER NOT NULL CHECK (visits > 0),
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX visit_leases_link ON visit_leases (link_id);
CREATE INDEX visit_leases_expiry ON visit_leases (expires_at);
