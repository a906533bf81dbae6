-- Keep in step with ../postgres/0003_dnsbl_state.sql.
--
-- DNSBL monitor state per pool IP (SPEC §4), so a restart does not forget it: whether the IP is
-- considered listed, the zones listing it (JSON object zone -> {"code", "reason"}), the clean
-- rounds in a row towards clearing, and whether it was taken out of rotation. A listed regular
-- IP stays drained across a restart and no second `ip_listed` is raised for a zone already seen.
CREATE TABLE dnsbl_tracks (
    ip            TEXT PRIMARY KEY,
    listed        INTEGER NOT NULL,
    clean_streak  INTEGER NOT NULL,
    drained       INTEGER NOT NULL,
    zones         TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Alerts once per cluster (SPEC §3/§6): an alert that several nodes may raise for the same
-- cause carries a key (kind, subject, cause, UTC day); the unique index makes the first insert
-- win, and only the winner notifies. NULL (no key) is never a conflict.
ALTER TABLE alerts ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX alerts_dedup ON alerts (dedup_key);
