-- Keep in step with ../postgres/0011_bulk_streams.sql.
--
-- Bulk streams (issue 25 part 4): one row per tenant and From domain whose mail was found bulk
-- (marked with List-Unsubscribe / Precedence, or above [bulk] provider_recipients_per_day to
-- one provider). The latest checks (JSON: check -> pass/fail/unknown) and the latest failure
-- as a sample (when, which message, what failed). Bounded by the tenants' own domains: the
-- From domain of a tenant's mail is one it owns. Removing a tenant deletes its rows.
CREATE TABLE bulk_streams (
    tenant            TEXT NOT NULL,
    from_domain       TEXT NOT NULL,
    why               TEXT NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    last_message_id   TEXT NOT NULL,
    checks            TEXT NOT NULL,
    last_action       TEXT NOT NULL,
    failed_at         INTEGER,
    failed_message_id TEXT,
    failed_detail     TEXT,
    PRIMARY KEY (tenant, from_domain)
);
