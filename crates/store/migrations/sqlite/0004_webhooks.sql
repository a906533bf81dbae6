-- Keep in step with ../postgres/0004_webhooks.sql.
--
-- Webhook subscriptions made through the API (SPEC §3/§5), delivered beside the config's
-- `[[webhooks]]`: `tenant` NULL means every tenant's alerts and the service-wide ones (operators
-- only); `kinds` is a JSON array of alert kinds (empty: every kind). The secret is kept to sign
-- deliveries and is never returned after creation. Every change bumps `webhooks_version` so
-- each node reloads its list within a second.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    tenant      TEXT,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    kinds       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant);

INSERT INTO meta (key, value) VALUES ('webhooks_version', 0);
