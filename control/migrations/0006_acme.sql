-- Certificates by ACME (control/src/acme): the deployment's ACME account and
-- one certificate per domain that wants https.


-- The ACME account, one per CA directory. `credentials_sealed` is
-- instant-acme's account credentials (the account URL and its private key)
-- as JSON, sealed with AES-256-GCM under the key in `--acme-key-file`
-- (control/src/acme/seal.rs): a database dump or replica alone does not hold
-- the key that can order certificates for every domain.
CREATE TABLE acme_accounts (
    directory_url       TEXT PRIMARY KEY,
    credentials_sealed  BYTEA NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per domain that wants https (the domain's normalised name, as in
-- domains.name): its current certificate, when the renewal task acts next,
-- and what went wrong last. A row exists from the first request
-- (POST /v1/domains/{name}/certificate) on; the chain and key appear together
-- with the first issuance and are replaced by each renewal.
CREATE TABLE certificates (
    domain          TEXT PRIMARY KEY,
    chain_pem       TEXT,                 -- PEM, leaf first
    key_pem_sealed  BYTEA,                -- the leaf's private key, sealed like the account's
    not_before      TIMESTAMPTZ,
    not_after       TIMESTAMPTZ,
    issued_at       TIMESTAMPTZ,
    -- The renewal task orders a certificate once this has passed: now() when
    -- requested, 2/3 into a certificate's lifetime after issuance, and later
    -- and later (exponential backoff) after each failure.
    renew_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    failures        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,                 -- for the API and the dashboard; never key material
    last_error_at   TIMESTAMPTZ,
    requested_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((chain_pem IS NULL) = (key_pem_sealed IS NULL))
);
CREATE INDEX certificates_renew_at ON certificates (renew_at);
