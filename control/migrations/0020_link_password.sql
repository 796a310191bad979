-- Password-protected links (issue 16, docs/password-links.md). The argon2id
-- verifier of the link's password as a PHC string, made by control with the
-- parameters engines accept (snapshots::password); NULL: no password. The
-- password itself is never stored; the API shows only `password_protected`.
ALTER TABLE links ADD COLUMN password_hash TEXT;
ALTER TABLE links ADD CONSTRAINT links_password_hash_phc CHECK (
    password_hash IS NULL OR password_hash LIKE '$argon2id$%'
) NOT VALID;
