-- Visits an engine moves from an older lease of a link into its newer one
-- (docs/max-visits.md): the visits the older lease had not handed to any core
-- when the newer one arrived are served from the newer one. Control moves them
-- between the two rows (control/src/leases/store.rs, move_visits), so each
-- row says what its lease holds; moved_into marks a lease whose visits moved,
-- which makes a repeated move change nothing. A lease whose every visit moved
-- holds 0 until its return deletes it.
ALTER TABLE visit_leases DROP CONSTRAINT visit_leases_visits_check;
ALTER TABLE visit_leases ADD CONSTRAINT visit_leases_visits_check CHECK (visits >= 0);
ALTER TABLE visit_leases ADD COLUMN moved_into BIGINT;
