-- Keep in step with ../postgres/0005_domain_verification.sql.
--
-- Trust boundaries (SPEC §9). A domain is usable as a sender only once verified: a tenant
-- admin's new domain is stored with verified = 0 and a token it must publish as the TXT record
-- `outguard-verify=<token>`; operators' domains are verified at once. Domains that existed
-- before this migration were all added by operators (CLI on the store) or accepted under the
-- old rules, so they keep working: the column defaults to verified.
--
-- A connector relays mail from domains its tenant has not registered only when an operator
-- marked it `forwarding`; existing connectors start without it (the safe default: an operator
-- who relied on forwarding turns it back on).
ALTER TABLE domains ADD COLUMN verified INTEGER NOT NULL DEFAULT 1;
ALTER TABLE domains ADD COLUMN verification_token TEXT;
ALTER TABLE connectors ADD COLUMN forwarding INTEGER NOT NULL DEFAULT 0;
