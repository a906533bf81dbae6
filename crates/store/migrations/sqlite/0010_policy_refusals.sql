-- Keep in step with ../postgres/0010_policy_refusals.sql.
--
-- Recipients the policy refused at RCPT (issue 22, the what-if simulator): a refused RCPT makes
-- no message record, yet it is the attempt that crossed a limit, so a replay needs it to make
-- the same restriction at the same time. One row per refused recipient; pruned with the trace.
CREATE TABLE policy_refusals (
    at              INTEGER NOT NULL,
    tenant          TEXT NOT NULL,
    submitter_kind  TEXT NOT NULL,
    submitter_id    TEXT NOT NULL,
    mail_from       TEXT NOT NULL,
    rcpt            TEXT NOT NULL,
    reply           TEXT NOT NULL
);
CREATE INDEX policy_refusals_at ON policy_refusals (at);
CREATE INDEX policy_refusals_tenant ON policy_refusals (tenant, at);
