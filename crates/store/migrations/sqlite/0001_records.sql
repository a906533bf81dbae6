-- Outguard records store, SQLite flavour. Keep in step with ../postgres/0001_records.sql:
-- same tables, columns and names; only the DDL dialect differs. Times are Unix milliseconds.

CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
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
    created_at     INTEGER NOT NULL
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
    limit_per_hour  INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX connectors_tenant ON connectors (tenant);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    secret_sha  BLOB NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    tenant      TEXT,
    created_at  INTEGER NOT NULL
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
    size               INTEGER NOT NULL,
    received_at        INTEGER NOT NULL,
    state              TEXT NOT NULL,
    pool               TEXT,
    class              TEXT,
    score              REAL,
    node               TEXT NOT NULL
);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_from ON messages (lower(mail_from), received_at);
CREATE INDEX messages_tenant ON messages (tenant, received_at);
CREATE INDEX messages_msgid ON messages (message_id_header);

CREATE TABLE message_rcpts (
    message_id  TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    rcpt        TEXT NOT NULL,
    PRIMARY KEY (message_id, idx)
);
CREATE INDEX message_rcpts_rcpt ON message_rcpts (lower(rcpt));

-- No foreign key to messages: events may arrive (batched) before or without the message row.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX events_message ON events (message_id, seq);

CREATE TABLE blobs (
    key    TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);

CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    ip      TEXT
);
