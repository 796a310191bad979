-- People, not only API keys: users, their memberships (roles) in
-- organizations, browser sessions, one-time tokens for invitations and
-- password resets, and who acted from where in the audit log.
-- Independent of 0003 (domains): this migration touches none of its tables.

-- A user signs in with an e-mail and a password. The e-mail is stored
-- normalised (trimmed, domain part lowercased) and matched without regard to
-- case (the unique index on lower(email)): Bob@x.example and bob@x.example
-- are one account, whatever their mail server makes of the local part.
-- password_hash is an argon2id PHC string ($argon2id$v=19$m=..,t=..,p=..$salt$hash),
-- so each hash carries the parameters it was made with.
-- operator: the user may act as the service's operator (the /v1/admin
-- routes); set only from the command line (`control users create --operator`).
CREATE TABLE users (
    id                   BIGSERIAL PRIMARY KEY,
    email                TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    operator             BOOLEAN NOT NULL DEFAULT false,
    password_changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- A user's role in an organization (control/README.md has the table of what
-- each may do). An organization keeps at least one owner: the API refuses to
-- remove or demote the last one.
CREATE TABLE memberships (
    org_id      BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- A signed-in browser. The cookie carries 256 random bits; only their
-- SHA-256 is stored, so a copy of this table signs nobody in. The CSRF token
-- is stored as it is: it is worth nothing without the cookie, and it is
-- bound to this one session (src/auth/session.rs). A session ends at
-- expires_at (absolute lifetime) or when last_seen_at is older than the idle
-- lifetime, whichever comes first; logout and password changes delete rows.
CREATE TABLE sessions (
    id            BIGSERIAL PRIMARY KEY,
    token_hash    BYTEA NOT NULL UNIQUE,
    user_id       BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    user_agent    TEXT NOT NULL DEFAULT '',
    ip            INET
);
CREATE INDEX sessions_user ON sessions (user_id);

-- One-time tokens (256 random bits, SHA-256 at rest) for joining an
-- organization. Single use: accepted_at is set in the transaction that
-- creates the membership.
CREATE TABLE invitations (
    id           BIGSERIAL PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    token_hash   BYTEA NOT NULL UNIQUE,
    invited_by   BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    accepted_at  TIMESTAMPTZ,
    accepted_by  BIGINT REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX invitations_org ON invitations (org_id, id DESC);

-- One-time tokens for setting a new password, same shape; a confirmed reset
-- spends every open token of the user and ends all their sessions.
CREATE TABLE password_resets (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- Who acted: a user (signed in) as well as a key, and from which address.
-- Entries written before this migration have neither.
ALTER TABLE audit_log ADD COLUMN user_id BIGINT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE audit_log ADD COLUMN ip INET;
