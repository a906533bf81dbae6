-- Keep in step with ../postgres/0007_retention.sql.
--
-- Retention (issue 17): the pruning task deletes rows older than each kind's window, oldest
-- first, a small batch per statement. These indexes let each batch find its rows by time
-- without scanning the table (messages already have messages_received, alerts alerts_created).
CREATE INDEX events_at ON events (at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX fbl_reports_received ON fbl_reports (received_at);
