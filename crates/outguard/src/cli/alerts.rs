//! `outguard alerts [--tenant NAME] [--kind KIND]` (SPEC §3, §8): recorded alerts, newest
//! first, from the store; `--ack ID...` acknowledges alerts instead of listing (audited, through
//! `outguard_admin::ops::alerts`).

use clap::Args;
use outguard_policy::AlertKind;
use outguard_policy::alerts::ALERT_KINDS;
use outguard_store::{Store, StoredAlert};
use serde_json::json;

use super::UsageError;
use super::output::{done, ops_error, print_list, time, user_error};

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[arg(long)]
    pub tenant: Option<String>,
    /// user_restricted, sending_limit_exceeded, suspicious_sending_pattern, tenant_restricted,
    /// ip_listed, ip_delisted, complaint_rate_exceeded, campaign_detected or
    /// suspicious_login_pattern.
    #[arg(long)]
    pub kind: Option<String>,
    /// At most this many (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Acknowledge these alerts instead of listing.
    #[arg(long, num_args = 1..)]
    pub ack: Vec<String>,
}

pub(super) fn parse_kind(s: &str) -> Result<AlertKind, UsageError> {
    AlertKind::parse(s.trim()).ok_or_else(|| {
        let known: Vec<&str> = ALERT_KINDS.iter().map(|k| k.as_str()).collect();
        UsageError(format!("--kind: `{s}` is not one of {}", known.join(", ")))
    })
}

pub async fn run(args: AlertsArgs, store: &Store, json: bool) -> anyhow::Result<()> {
    if !args.ack.is_empty() {
        let actor = outguard_admin::ops::Actor::cli();
        for id in &args.ack {
            outguard_admin::ops::alerts::ack(store, &actor, id)
                .await
                .map_err(ops_error)?;
        }
        return done(
            json,
            &json!({ "acknowledged": args.ack }),
            &format!("{} alert(s) acknowledged", args.ack.len()),
        );
    }
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    let list = store
        .list_alerts(args.tenant.as_deref(), kind, args.limit)
        .await
        .map_err(user_error)?;
    print_alerts(json, &list)
}

pub(super) fn print_alerts(json: bool, list: &[StoredAlert]) -> anyhow::Result<()> {
    let rows = list
        .iter()
        .map(|s| {
            let a = &s.alert;
            vec![
                time(a.created_at),
                a.kind.as_str().to_string(),
                format!("{:?}", a.severity).to_lowercase(),
                a.tenant.clone().unwrap_or_else(|| "(service)".into()),
                a.subject
                    .as_ref()
                    .map_or_else(|| "-".into(), |s| s.id().to_string()),
                if s.acknowledged { "yes" } else { "no" }.into(),
                s.id.clone(),
                a.summary.clone(),
            ]
        })
        .collect();
    print_list(
        json,
        list,
        &[
            "TIME", "KIND", "SEVERITY", "TENANT", "SUBJECT", "ACK", "ID", "SUMMARY",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use outguard_policy::{Alert, Subject};

    use super::*;

    #[tokio::test]
    async fn list_filter_and_ack() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        let a = Alert::new(
            AlertKind::UserRestricted,
            Some("acme"),
            Some(Subject::Account("b@acme.example".into())),
            "blocked".into(),
            vec![],
            1,
        );
        let id = store.insert_alert(&a).await.unwrap();
        let args = |kind: Option<&str>, ack: Vec<String>| AlertsArgs {
            tenant: Some("acme".into()),
            kind: kind.map(String::from),
            limit: 10,
            ack,
        };
        run(args(Some("user_restricted"), vec![]), &store, false)
            .await
            .unwrap();
        let e = run(args(Some("nope"), vec![]), &store, false)
            .await
            .unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some() && e.to_string().contains("nope"));
        run(args(None, vec![id.clone()]), &store, true)
            .await
            .unwrap();
        assert!(store.alert(&id).await.unwrap().unwrap().acknowledged);
        assert!(
            run(args(None, vec!["missing".into()]), &store, false)
                .await
                .is_err()
        );
        assert_eq!(parse_kind(" ip_listed").unwrap(), AlertKind::IpListed);
    }
}
