-- UTM parameters per link (issue 16): source, medium, campaign, term and
-- content, each set or not. Control merges them into the target it gives
-- the engines (snapshots and link deltas: utm_source=... in the query), so
-- engines know nothing of them and a link without them costs nothing more.
-- The API shows `target` as it was written and `utm` beside it.
-- 1 to 200 characters (the API also refuses control characters). NOT VALID:
-- the columns were just added, so every existing row holds NULLs and
-- passes; checking them would only scan the whole table under this
-- migration's lock. New and updated rows are checked.
ALTER TABLE links ADD COLUMN utm_source TEXT;
ALTER TABLE links ADD COLUMN utm_medium TEXT;
ALTER TABLE links ADD COLUMN utm_campaign TEXT;
ALTER TABLE links ADD COLUMN utm_term TEXT;
ALTER TABLE links ADD COLUMN utm_content TEXT;
ALTER TABLE links ADD CONSTRAINT links_utm_values CHECK (
        (utm_source IS NULL OR char_length(utm_source) BETWEEN 1 AND 200)
    AND (utm_medium IS NULL OR char_length(utm_medium) BETWEEN 1 AND 200)
    AND (utm_campaign IS NULL OR char_length(utm_campaign) BETWEEN 1 AND 200)
    AND (utm_term IS NULL OR char_length(utm_term) BETWEEN 1 AND 200)
    AND (utm_content IS NULL OR char_length(utm_content) BETWEEN 1 AND 200)
) NOT VALID;
