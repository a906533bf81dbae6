-- Outguard records store, PostgreSQL flavour. Keep in step with ../sqlite/0001_records.sql:
-- same tables, columns and names; only the DDL dialect differs. Times are Unix milliseconds.

CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

CREATE TABLE domains (
    domain         TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL REFERENCES tenants(name),
    dkim_selector  TEXT,
    dkim_pem       TEXT
);
CREATE INDEX domains_tenant ON domains (tenant);

CREATE TABLE accounts (
    address        TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL REFERENCES tenants(name),
    domain         TEXT NOT NULL REFERENCES domains(domain),
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX accounts_tenant ON accounts (tenant);
CREATE INDEX accounts_domain ON accounts (domain);

CREATE TABLE send_as (
    address  TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
    target   TEXT NOT NULL,
    PRIMARY KEY (address, target)
);

CREATE TABLE connectors (
    cidr            TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL REFERENCES tenants(name),
    limit_per_hour  BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX connectors_tenant ON connectors (tenant);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    secret_sha  BYTEA NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    tenant      TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    tenant             TEXT,
    submitter_kind     TEXT NOT NULL,
    submitter_id       TEXT,
    mail_from          TEXT NOT NULL,
    header_from        TEXT,
    message_id_header  TEXT,
    subject            TEXT,
    size               BIGINT NOT NULL,
    received_at        BIGINT NOT NULL,
    state              TEXT NOT NULL,
    pool               TEXT,
    class              TEXT,
    score              DOUBLE PRECISION,
    node               TEXT NOT NULL
);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_from ON messages (lower(mail_from), received_at);
CREATE INDEX messages_tenant ON messages (tenant, received_at);
CREATE INDEX messages_msgid ON messages (message_id_header);

CREATE TABLE message_rcpts (
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    rcpt        TEXT NOT NULL,
    PRIMARY KEY (message_id, idx)
);
CREATE INDEX message_rcpts_rcpt ON message_rcpts (lower(rcpt));

-- No foreign key to messages: events may arrive (batched) before or without the message row.
CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX events_message ON events (message_id, seq);

CREATE TABLE blobs (
    key    TEXT PRIMARY KEY,
    value  BYTEA NOT NULL
);

CREATE TABLE audit_log (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    ip      TEXT
);

-- Outbound spam policy (SPEC §2.4, §3). Scope and settings are JSON (PolicyScope,
-- PolicySettings); the tenant's default policy is the row named 'default' with priority -1.
CREATE TABLE policies (
    tenant    TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    priority  BIGINT NOT NULL,
    scope     TEXT NOT NULL,
    settings  TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE UNIQUE INDEX policies_priority ON policies (tenant, priority);

-- Change counters every node polls (one row read) to reload cached policies / restrictions.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('policies_version', 0), ('restrictions_version', 0);

-- Restrictions are history (kept after a lift, no foreign keys). `data` is the whole
-- Restriction as JSON; the other columns are its searchable parts (account ids lowercased).
CREATE TABLE restrictions (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    subject_kind  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    until_at      BIGINT,
    lifted_at     BIGINT,
    data          TEXT NOT NULL
);
CREATE INDEX restrictions_subject ON restrictions (subject_kind, subject_id, created_at);
CREATE INDEX restrictions_open ON restrictions (lifted_at, until_at);
CREATE INDEX restrictions_tenant ON restrictions (tenant, created_at);

-- Alert records (SPEC §3); tenant is NULL for service-wide alerts (ip_listed, ip_delisted).
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    tenant        TEXT,
    kind          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    acknowledged  BIGINT NOT NULL DEFAULT 0,
    data          TEXT NOT NULL
);
CREATE INDEX alerts_tenant ON alerts (tenant, kind, created_at);
CREATE INDEX alerts_created ON alerts (created_at);

-- DNSBL monitor (SPEC §4): every check of one pool IP on one zone (history), and the latest
-- answer per IP and zone (what `dnsbl check`, the API and the UI show).
CREATE TABLE dnsbl_checks (
    ip          TEXT NOT NULL,
    zone        TEXT NOT NULL,
    checked_at  BIGINT NOT NULL,
    status      TEXT NOT NULL,
    code        TEXT,
    reason      TEXT
);
CREATE INDEX dnsbl_checks_ip ON dnsbl_checks (ip, zone, checked_at);
CREATE TABLE dnsbl_state (
    ip          TEXT NOT NULL,
    zone        TEXT NOT NULL,
    checked_at  BIGINT NOT NULL,
    status      TEXT NOT NULL,
    code        TEXT,
    reason      TEXT,
    PRIMARY KEY (ip, zone)
);

-- Feedback-loop (ARF) reports as received, parsed or flagged malformed, with attribution.
CREATE TABLE fbl_reports (
    id             TEXT PRIMARY KEY,
    received_at    BIGINT NOT NULL,
    feedback_type  TEXT NOT NULL,
    malformed      BIGINT NOT NULL DEFAULT 0,
    message_id     TEXT,
    account        TEXT,
    tenant         TEXT,
    data           TEXT NOT NULL,
    raw            BYTEA NOT NULL
);
CREATE INDEX fbl_reports_tenant ON fbl_reports (tenant, received_at);
CREATE INDEX fbl_reports_message ON fbl_reports (message_id);
