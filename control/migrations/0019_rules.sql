-- Redirect rules and A/B splits per link (issue 16, docs/redirect-rules.md).
-- Both hold the model of snapshots::rules as JSON (rule times as unix
-- seconds; the API shows them in RFC 3339): `rules` an ordered list of
-- {when, target, status}, `split` a list of {target, weight, status}. NULL:
-- none (the API writes NULL rather than []). Control's input module checks
-- them (the same validate_rules snapshot builders and engines apply) before
-- they are stored; the constraint only keeps the shape a list. NOT VALID, as
-- for the UTM columns: existing rows hold NULLs.
ALTER TABLE links ADD COLUMN rules JSONB;
ALTER TABLE links ADD COLUMN split JSONB;
ALTER TABLE links ADD CONSTRAINT links_rules_lists CHECK (
        (rules IS NULL OR jsonb_typeof(rules) = 'array')
    AND (split IS NULL OR jsonb_typeof(split) = 'array')
) NOT VALID;
