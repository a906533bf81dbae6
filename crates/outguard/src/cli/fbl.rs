//! `outguard fbl import FILE...` (SPEC §4, §8): feedback reports from dumps — one report per
//! `.eml` file, or every message of an mbox (a file starting with `From `) — recorded on the
//! store like reports the server receives: parsed or flagged malformed, attributed, with a
//! `complaint` trace event on the message. DSN bounces (RFC 3464) in a dump are recorded as
//! DSNs with their `bounced` / `dsn` event. Complaint rates live in the running server's
//! counters, so an import does not move them; a `bounced` event imported while a server runs on
//! the same store is counted by its bounce-rate watcher like any other bounce.

use std::path::PathBuf;

use clap::Subcommand;
use outguard_store::{FblRecord, Store};

use super::UsageError;
use super::output::print_list;
use outguard_relay::fbl::{complaint_event, dsn, record_report};
use outguard_types::time::now_ms;

#[derive(Debug, Subcommand)]
pub enum FblCmd {
    /// Record ARF reports (and DSN bounces) from .eml files or mbox dumps.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The messages of an mbox (`From ` separator lines; `>From ` unescaped), or the file itself.
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    if !data.starts_with(b"From ") {
        return vec![data.to_vec()];
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            out.extend(
                cur.take()
                    .filter(|m| !m.iter().all(u8::is_ascii_whitespace)),
            );
            cur = Some(Vec::new());
            continue;
        }
        let m = cur.get_or_insert_with(Vec::new);
        let unescaped = line.strip_prefix(b">").filter(|l| {
            l.iter()
                .position(|b| *b != b'>')
                .is_some_and(|i| l[i..].starts_with(b"From "))
        });
        m.extend_from_slice(unescaped.unwrap_or(line));
    }
    out.extend(cur.filter(|m| !m.iter().all(u8::is_ascii_whitespace)));
    out
}

/// The CLI on the store acts as the operator (SPEC §9): what it imports is trusted.
fn operator() -> Option<String> {
    Some(outguard_relay::fbl::trust::OPERATOR.to_string())
}

pub async fn run(cmd: FblCmd, store: &Store, json: bool) -> anyhow::Result<u8> {
    let FblCmd::Import { files } = cmd;
    let mut records: Vec<FblRecord> = Vec::new();
    let mut rows = Vec::new();
    for file in &files {
        let data =
            std::fs::read(file).map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
        for (i, raw) in split_mbox(&data).iter().enumerate() {
            let rec = if dsn::is_dsn(raw) {
                let (rec, parsed) = dsn::record_dsn(store, raw, operator(), now_ms()).await?;
                let msg = match &rec.attributed {
                    Some(att) => store.message(&att.message_id).await?,
                    None => None,
                };
                if let Some(msg) = msg {
                    store
                        .append_events(&[dsn::dsn_event(&rec, &parsed, &msg)])
                        .await?;
                }
                rec
            } else {
                let (rec, _) = record_report(store, raw, operator(), now_ms()).await?;
                if let Some(att) = &rec.attributed {
                    store
                        .append_events(&[complaint_event(&rec, &att.message_id)])
                        .await?;
                }
                rec
            };
            outguard_admin::ops::fbl::recorded(
                store,
                &outguard_admin::ops::Actor::cli(),
                outguard_admin::ops::fbl::HandedIn::Imported,
                &rec,
            )
            .await
            .map_err(super::output::ops_error)?;
            let att = rec.attributed.as_ref();
            rows.push(vec![
                format!("{}#{}", file.display(), i + 1),
                rec.id.clone(),
                rec.feedback_type.clone(),
                if rec.malformed.is_some() {
                    "malformed"
                } else {
                    "ok"
                }
                .to_string(),
                att.map_or_else(|| "-".into(), |a| a.message_id.clone()),
                att.and_then(|a| a.account.clone())
                    .unwrap_or_else(|| "-".into()),
                att.and_then(|a| a.tenant.clone())
                    .unwrap_or_else(|| "-".into()),
            ]);
            records.push(rec);
        }
    }
    print_list(
        json,
        &records,
        &[
            "SOURCE", "ID", "TYPE", "PARSE", "MESSAGE", "ACCOUNT", "TENANT",
        ],
        rows,
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_split() {
        let mbox = b"From a@b Mon Nov 23 10:00:00 2026\nSubject: one\n\n>From here\nbody\n\nFrom c@d Mon Nov 23 10:00:01 2026\nSubject: two\n\nx\n";
        let parts = split_mbox(mbox);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], b"Subject: one\n\nFrom here\nbody\n\n".to_vec());
        assert_eq!(parts[1], b"Subject: two\n\nx\n".to_vec());
        assert_eq!(split_mbox(b"Subject: x\n\ny\n").len(), 1);
    }
}
