-- Imports (`control import`): one row per organization, file content (its
-- SHA-256) and target domain. Each batch of links commits together with this
-- row's `done_line`, so an interrupted import resumes after the last line it
-- committed instead of starting again (which would report every link it had
-- already made as a clash), and never makes a link twice.
CREATE TABLE imports (
    id           BIGSERIAL PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations(id),
    file_sha256  BYTEA NOT NULL,
    domain_id    BIGINT NOT NULL REFERENCES domains(id),
    format       TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    done_line    BIGINT NOT NULL DEFAULT 0,   -- every record ending on or before it is committed
    imported     BIGINT NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    UNIQUE (org_id, file_sha256, domain_id)
);

-- What an import did not import, by line: a code taken on the domain
-- (`clash`) or a row that fails the API's checks (`invalid`). Written in the
-- batch's transaction, so a resumed import reports the earlier ones too.
CREATE TABLE import_problems (
    import_id  BIGINT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    line       BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('clash', 'invalid')),
    message    TEXT NOT NULL,
    PRIMARY KEY (import_id, line, message)
);
