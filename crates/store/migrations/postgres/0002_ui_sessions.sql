-- Web UI sessions (SPEC §5), kept in the store so a restart does not log everyone out. Keep in
-- step with ../sqlite/0002_ui_sessions.sql. Only the SHA-256 of the session id is stored; the
-- role and tenant come from the API token (joined on every request), so revoking the token ends
-- its sessions at once (and deletes them, by the foreign key).
CREATE TABLE ui_sessions (
    id_sha      BYTEA PRIMARY KEY,
    token_id    TEXT NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);
CREATE INDEX ui_sessions_token ON ui_sessions (token_id);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
