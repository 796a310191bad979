-- The operator: a principal apart from every tenant.
--
-- An operator key is an api_keys row with operator = true and no
-- organization. Not an "operator organization": an organization row would
-- make the operator a tenant as well (links, keys and stats of its own through
-- the tenant routes, a name that could collide with a customer's), and the
-- difference between "global" and "this tenant" would rest on a name
-- compared in code. Here it rests on the row itself, and the CHECK makes the
-- two kinds exclusive: an operator key has no org_id and no scopes, a tenant
-- key has an org_id.
ALTER TABLE api_keys ADD COLUMN operator BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE api_keys ALTER COLUMN org_id DROP NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_principal CHECK (
    (operator AND org_id IS NULL AND scopes = '{}')
    OR (NOT operator AND org_id IS NOT NULL)
);

-- Acts done with an operator key (blocklist, disabling any link, snapshots)
-- say so; org_id then names the organization acted on, if any.
ALTER TABLE audit_log ADD COLUMN operator BOOLEAN NOT NULL DEFAULT false;
