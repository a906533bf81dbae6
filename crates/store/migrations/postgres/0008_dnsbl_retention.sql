-- Keep in step with ../sqlite/0008_dnsbl_retention.sql.
--
-- Retention of the DNSBL monitor's check history (issue 17): the pruning task deletes the
-- oldest checks first, a batch per statement, found through this index by time.
CREATE INDEX dnsbl_checks_at ON dnsbl_checks (checked_at);
