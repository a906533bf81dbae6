-- Keep in step with ../postgres/0005_fbl_trust.sql.
--
-- SPEC §9 "Reports are believed only from trusted reporters".
-- * fbl_reports.trusted: whether the report came from a trusted reporter (counted, trained).
--   Reports stored before this rule were all counted, so they stay trusted.
-- * fbl_counted: what each trusted report counted, so that a message counts at most one
--   complaint per trusted reporter entry and each of its recipients at most one hard bounce.
-- * messages.body_digest: the digest of the body as spooled, which a complaint's attached copy
--   must match before it may train the tenant's spam overlay.
ALTER TABLE fbl_reports ADD COLUMN trusted INTEGER NOT NULL DEFAULT 1;
CREATE INDEX fbl_reports_trusted ON fbl_reports (trusted, received_at);

CREATE TABLE fbl_counted (
    message_id  TEXT NOT NULL,
    what        TEXT NOT NULL,
    reporter    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (message_id, what, reporter)
);
CREATE INDEX fbl_counted_at ON fbl_counted (at);

ALTER TABLE messages ADD COLUMN body_digest TEXT;
