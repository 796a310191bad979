-- Custom domains: the host names an organization's short links are served
-- under (go.brand.example/launch), next to the deployment's own.
--
-- Domain id 0 is the deployment's default domain, the one every link written
-- before domains existed lives on. Its name is the `--default-domain` setting,
-- written at start (empty until one is set); engines and the record formats
-- treat id 0 as "the default domain" too (snapshots::domain::DEFAULT_DOMAIN),
-- which is why the row is created here with that id rather than drawn from
-- the sequence.
--
-- An organization claims a name (a pending row with a verification token),
-- proves it controls the name by serving the token (engines answer the
-- well-known path for it; control fetches it), and only then is the domain
-- served. Several organizations may claim one name while pending; only one
-- live domain per name may be verified (domains_verified_name).
CREATE TABLE domains (
    id                  BIGSERIAL PRIMARY KEY,
    org_id              BIGINT REFERENCES organizations(id),  -- NULL: the deployment's own
    name                TEXT NOT NULL,                          -- normalised: lowercase ASCII, punycode
    verification_token  TEXT NOT NULL,
    verified_at         TIMESTAMPTZ,
    root_redirect       TEXT,
    not_found_redirect  TEXT,
    http_mode           TEXT NOT NULL DEFAULT 'serve' CHECK (http_mode IN ('serve', 'redirect-https')),
    hsts_max_age        INTEGER CHECK (hsts_max_age BETWEEN 0 AND 63072000),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    CHECK (id <> 0 OR org_id IS NULL),
    CHECK (id = 0 OR org_id IS NOT NULL)
);
-- Ids fit the record formats' u32.
ALTER SEQUENCE domains_id_seq MAXVALUE 4294967295;
CREATE UNIQUE INDEX domains_org_name ON domains (org_id, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX domains_verified_name ON domains (name)
    WHERE verified_at IS NOT NULL AND deleted_at IS NULL AND id <> 0;
CREATE INDEX domains_org ON domains (org_id, id) WHERE deleted_at IS NULL;
INSERT INTO domains (id, org_id, name, verification_token, verified_at)
VALUES (0, NULL, '', '', now());

-- Every link lives on a domain; existing links on the default one. Codes are
-- unique per domain (never reused on it, deleted or not), no longer globally:
-- the same code may exist on two domains.
ALTER TABLE links ADD COLUMN domain_id BIGINT NOT NULL DEFAULT 0 REFERENCES domains(id);
ALTER TABLE links DROP CONSTRAINT links_code_key;
ALTER TABLE links ADD CONSTRAINT links_domain_code UNIQUE (domain_id, code);
CREATE INDEX links_code ON links (code);

-- Fixed answers engines serve at http://<host><path>: domain verification
-- tokens now, ACME HTTP-01 challenges later. Keyed by host name and path (not
-- by domain: a pending name may be claimed by several organizations).
CREATE TABLE well_known_answers (
    host        TEXT NOT NULL,
    path        TEXT NOT NULL,
    body        TEXT NOT NULL,
    domain_id   BIGINT REFERENCES domains(id),  -- the domain it was made for, if any
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (host, path)
);
