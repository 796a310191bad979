-- Search in the links list (`q`: target or title ILIKE '%text%', the API's and the
-- dashboard's): trigram indexes make it an index lookup instead of a scan of all the
-- organization's links (over 100k links: 253 ms -> 0.2 ms for a text nowhere, 12 ms for a
-- rare one; control/README.md, "Measured: the dashboard"). pg_trgm ships with PostgreSQL
-- and is a trusted extension (13+), so the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX links_search ON links USING gin (target gin_trgm_ops, title gin_trgm_ops);
