-- Keep in step with ../sqlite/0009_suppressions.sql.
--
-- Recipient suppression (issue 25): a recipient that hard-bounced (5.1.x at our delivery, or a
-- trusted DSN), or that an admin added, is refused at RCPT for that tenant until `until_at`.
-- One row per (tenant, recipient): a new bounce extends the row. `recipient` is lowercase.
-- No foreign key to tenants: removing a tenant deletes its rows in the same transaction.
CREATE TABLE suppressions (
    tenant      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    until_at    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    message_id  TEXT,
    PRIMARY KEY (tenant, recipient)
);
CREATE INDEX suppressions_until ON suppressions (until_at);
