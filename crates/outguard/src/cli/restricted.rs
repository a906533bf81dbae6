//! `outguard restricted` (SPEC §3, §8): list restricted accounts, connectors and tenants, and
//! lift a restriction as the operator, directly on the store, through `outguard_admin::ops`. A
//! lift obeys `check_lift`, is audited (`restricted.lift`, actor `cli`, the reason) and bumps the store's restriction
//! version, so a running server notices it within its poll interval (about a second).
//!
//! `--release-held` also releases the subject's held mail. That needs the spool, which a
//! running server holds locked: then nothing is lifted and the command says to use the API
//! (exit 69), so the two steps never half-happen.

use clap::{Args, Subcommand};
use outguard_admin::ops::{self, Actor};
use outguard_policy::Subject;
use outguard_store::{Store, StoredRestriction};
use outguard_types::config::Config;
use outguard_types::model::Millis;
use serde_json::json;

use super::output::{now_ms, ops_error, print_list, time};
use super::queue::SpoolQueue;
use super::{Unavailable, UsageError};

#[derive(Debug, Subcommand)]
pub enum RestrictedCmd {
    /// List restrictions in force (with --all: lifted and expired ones too).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Lift the restriction of an account (address), connector (CIDR) or tenant (name).
    Lift(LiftArgs),
    /// End ACCOUNT_RECENT_SPAM for an account (address) or connector (CIDR): its next message
    /// leaves by its own verdict instead of from the high-risk pool.
    ClearReputation(ClearArgs),
}

#[derive(Debug, Args)]
pub struct ClearArgs {
    pub address: String,
    /// Why (recorded in the audit log).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct LiftArgs {
    pub address: String,
    /// Why (recorded in the audit log and on the restriction).
    #[arg(long)]
    pub reason: String,
    /// Also release the subject's held messages for delivery.
    #[arg(long)]
    pub release_held: bool,
}

pub async fn run(
    cmd: RestrictedCmd,
    cfg: &Config,
    store: &Store,
    json: bool,
) -> anyhow::Result<()> {
    match cmd {
        RestrictedCmd::List { tenant, all } => {
            let list = store
                .list_restrictions_at(tenant.as_deref(), (!all).then(now_ms))
                .await?;
            print_restrictions(json, &list)
        }
        RestrictedCmd::Lift(args) => {
            let outcome = lift_as_operator(cfg, store, &args, now_ms()).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&outcome.to_json())?);
            } else {
                print_lift(&args, &outcome);
            }
            Ok(())
        }
        RestrictedCmd::ClearReputation(args) => {
            let done = clear_as_operator(cfg, store, &args).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&done)?);
            } else {
                print_cleared(&done.subject, done.was_recent_spam);
            }
            Ok(())
        }
    }
}

/// The human answer to a reputation clear.
pub(super) fn print_cleared(subject: &str, was: bool) {
    if was {
        out!("{subject}: reputation cleared; its next message leaves by its own verdict");
    } else {
        out!("{subject}: was not under ACCOUNT_RECENT_SPAM; nothing to clear");
    }
}

/// Clear a sender's reputation as the operator, on the counter store the server uses: Redis
/// in cluster mode; in the embedded mode the counters' snapshot, which only a stopped server
/// leaves alone (a running one holds the spool: then use the API, exit 69).
async fn clear_as_operator(
    cfg: &Config,
    store: &Store,
    args: &ClearArgs,
) -> anyhow::Result<ops::reputation::Cleared> {
    outguard_types::text::check_no_control("--reason", &args.reason).map_err(UsageError)?;
    if args.reason.trim().is_empty() {
        return Err(UsageError("--reason must say why the reputation is cleared".into()).into());
    }
    let actor = Actor::cli();
    match cfg.counters.as_deref() {
        Some(url) if url.starts_with("redis://") => {
            let redis = outguard_store::redis_counters::RedisCounters::from_url(url)
                .await
                .map_err(|e| Unavailable(format!("counters: {e}")))?;
            ops::reputation::clear(store, &redis, &actor, &args.address, &args.reason)
                .await
                .map_err(ops_error)
        }
        _ => {
            let _spool = SpoolQueue::open(cfg, store, "clear a reputation")?;
            use outguard_store::memory_counters::MemoryCounters;
            let path = MemoryCounters::snapshot_path(&cfg.server.data_dir);
            let mem = MemoryCounters::load(&path)?;
            let done = ops::reputation::clear(store, &mem, &actor, &args.address, &args.reason)
                .await
                .map_err(ops_error)?;
            mem.save(&path)?;
            Ok(done)
        }
    }
}

/// The human answer to a lift.
pub(super) fn print_lift(args: &LiftArgs, outcome: &LiftOutcome) {
    for r in &outcome.lifted {
        out!(
            "{}: restriction {} ({}) lifted",
            args.address,
            r.id,
            r.restriction.reason.limit.as_str()
        );
    }
    if args.release_held {
        out!(
            "{}: {} held message(s) released",
            args.address,
            outcome.released.len()
        );
    }
}

pub(super) fn print_restrictions(json: bool, list: &[StoredRestriction]) -> anyhow::Result<()> {
    let rows = list
        .iter()
        .map(|s| {
            let r = &s.restriction;
            vec![
                r.subject.id().to_string(),
                subject_kind(&r.subject).to_string(),
                r.tenant.clone(),
                r.reason.limit.as_str().to_string(),
                time(r.created_at),
                r.until.map_or_else(|| "until lifted".into(), time),
                r.lifted
                    .as_ref()
                    .map_or_else(|| "-".into(), |l| format!("{} by {}", time(l.at), l.by)),
                s.id.clone(),
            ]
        })
        .collect();
    print_list(
        json,
        list,
        &[
            "SUBJECT", "KIND", "TENANT", "LIMIT", "SINCE", "UNTIL", "LIFTED", "ID",
        ],
        rows,
    )
}

fn subject_kind(s: &Subject) -> &'static str {
    match s {
        Subject::Account(_) => "account",
        Subject::Connector(_) => "connector",
        Subject::Tenant(_) => "tenant",
    }
}

/// What one lift did.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LiftOutcome {
    pub lifted: Vec<StoredRestriction>,
    pub released: Vec<String>,
}

impl LiftOutcome {
    fn to_json(&self) -> serde_json::Value {
        json!({ "lifted": self.lifted, "released": self.released })
    }
}

/// Lift every active restriction of the subject as the operator (see the module doc), through
/// `ops::restricted::lift`: the API's rules and audit entries.
pub(super) async fn lift_as_operator(
    cfg: &Config,
    store: &Store,
    args: &LiftArgs,
    now: Millis,
) -> anyhow::Result<LiftOutcome> {
    outguard_types::text::check_no_control("--reason", &args.reason).map_err(UsageError)?;
    if args.reason.trim().is_empty() {
        return Err(UsageError("--reason must say why the restriction is lifted".into()).into());
    }
    // Take the spool before changing anything: a running server holds it.
    let queue = if args.release_held {
        Some(SpoolQueue::open(cfg, store, "lift with --release-held")?)
    } else {
        None
    };
    let actor = Actor::cli();
    let done = ops::restricted::lift(
        cfg,
        store,
        &actor,
        &args.address,
        &args.reason,
        queue.as_ref(),
        now,
    )
    .await
    .map_err(ops_error)?;
    Ok(LiftOutcome {
        lifted: done.lifted,
        released: done.released,
    })
}

#[cfg(test)]
mod tests {
    use outguard_policy::{LimitKind, Measure, Restriction, RestrictionReason};
    use outguard_relay::enforce::lift::parse_subject;
    use outguard_store::spool::{Envelope, Spool, new_message_id};
    use outguard_types::model::Submitter;
    use outguard_types::policy::ThresholdAction;

    use super::super::Unavailable;
    use super::*;

    // 2026-11-23 18:00:00 UTC
    const NOW: Millis = 1_795_456_800_000;

    async fn setup() -> (tempfile::TempDir, Config, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.server.data_dir = dir.path().to_path_buf();
        let store = Store::open(&cfg.store_url()).await.unwrap();
        store.add_tenant("acme", NOW).await.unwrap();
        (dir, cfg, store)
    }

    fn restriction(addr: &str, at: Millis) -> Restriction {
        let reason = RestrictionReason::new(
            LimitKind::ExternalPerHour,
            vec![Measure::new("external recipients in last hour", 501, 500)],
        );
        Restriction::for_action(
            ThresholdAction::BlockUser,
            Subject::Account(addr.into()),
            "acme",
            reason,
            at,
        )
        .unwrap()
    }

    async fn queue(spool: &Spool, submitter: &str, held: bool) -> String {
        let id = new_message_id();
        let env = Envelope {
            id: id.clone(),
            mail_from: submitter.into(),
            rcpts: vec!["x@dest.example".into()],
            tenant: Some("acme".into()),
            submitter: Submitter::Account(submitter.into()),
            pool: "regular".into(),
            received_at: NOW,
            class: None,
            score: None,
            held,
            quarantined: false,
            extra_headers: vec![],
            extra_headers_to: None,
        };
        spool
            .accept(&env, b"Subject: t\r\n\r\nbody\r\n")
            .await
            .unwrap();
        id
    }

    fn args(addr: &str, release_held: bool) -> LiftArgs {
        LiftArgs {
            address: addr.into(),
            reason: "customer cleaned the account".into(),
            release_held,
        }
    }

    #[test]
    fn subjects() {
        assert_eq!(
            parse_subject("a@b.example"),
            Subject::Account("a@b.example".into())
        );
        assert_eq!(
            parse_subject("10.1.2.3"),
            Subject::Connector("10.1.2.3/32".into())
        );
        assert_eq!(
            parse_subject("10.1.2.3/8"),
            Subject::Connector("10.0.0.0/8".into())
        );
        assert_eq!(parse_subject("acme"), Subject::Tenant("acme".into()));
    }

    #[tokio::test]
    async fn lift_releases_held_mail_audits_and_bumps_the_version() {
        let (_dir, cfg, store) = setup().await;
        let id = store
            .insert_restriction(&restriction("Bulk@acme.example", NOW))
            .await
            .unwrap();
        let spool = Spool::open(cfg.server.data_dir.join("spool")).unwrap();
        let mine = [
            queue(&spool, "bulk@acme.example", true).await,
            queue(&spool, "bulk@acme.example", true).await,
        ];
        let other = queue(&spool, "other@acme.example", true).await;
        let not_held = queue(&spool, "bulk@acme.example", false).await;

        // While the spool is held (a running server), nothing changes: exit 69.
        let e = lift_as_operator(&cfg, &store, &args("bulk@acme.example", true), NOW + 1)
            .await
            .unwrap_err();
        assert!(e.downcast_ref::<Unavailable>().is_some(), "{e}");
        assert_eq!(
            store.active_restrictions(NOW + 1).await.unwrap().len(),
            1,
            "not lifted"
        );
        drop(spool);

        let v0 = store.restrictions_version().await.unwrap();
        let out = lift_as_operator(&cfg, &store, &args("bulk@acme.example", true), NOW + 2)
            .await
            .unwrap();
        assert_eq!(out.lifted.len(), 1);
        assert_eq!(out.lifted[0].id, id);
        let lifted = store
            .restriction(&id)
            .await
            .unwrap()
            .unwrap()
            .restriction
            .lifted
            .unwrap();
        assert_eq!((lifted.by.as_str(), lifted.at), ("cli", NOW + 2));
        assert!(
            store.restrictions_version().await.unwrap() > v0,
            "a running server sees it at its next poll"
        );
        let mut want = mine.to_vec();
        want.sort();
        assert_eq!(out.released, want);

        let spool = Spool::open(cfg.server.data_dir.join("spool")).unwrap();
        for id in &mine {
            assert!(!spool.load_one(id).unwrap().1.held, "released");
        }
        assert!(
            spool.load_one(&other).unwrap().1.held,
            "another account's mail stays held"
        );
        assert!(!spool.load_one(&not_held).unwrap().1.held);

        let log = store.audit_log(10).await.unwrap();
        let lift_entry = log
            .iter()
            .find(|e| e.action == "restricted.lift")
            .expect("audited");
        assert_eq!(lift_entry.actor, "cli");
        assert_eq!(lift_entry.target, "bulk@acme.example");
        assert!(lift_entry.detail.contains("customer cleaned the account"));
        assert_eq!(
            log.iter().filter(|e| e.action == "queue.release").count(),
            2
        );

        // Nothing left to lift; an empty reason is bad usage.
        let e = lift_as_operator(&cfg, &store, &args("bulk@acme.example", false), NOW + 3)
            .await
            .unwrap_err();
        // The API's wording (one code path: ops::restricted).
        assert!(e.to_string().contains("no active restriction"), "{e}");
        store
            .insert_restriction(&restriction("bulk@acme.example", NOW + 4))
            .await
            .unwrap();
        let mut blank = args("bulk@acme.example", false);
        blank.reason = "  ".into();
        let e = lift_as_operator(&cfg, &store, &blank, NOW + 5)
            .await
            .unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
        // The operator is not held to max_unblocks_per_day (it counts the lift anyway).
        lift_as_operator(&cfg, &store, &args("bulk@acme.example", false), NOW + 6)
            .await
            .unwrap();
        assert_eq!(
            store
                .lifts_today(&Subject::Account("bulk@acme.example".into()), NOW + 7)
                .await
                .unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn tenant_restrictions_are_lifted_by_name() {
        let (_dir, cfg, store) = setup().await;
        let r = Restriction::tenant(
            "acme",
            RestrictionReason::new(LimitKind::TenantSpamPerHour, vec![]),
            NOW,
        );
        store.insert_restriction(&r).await.unwrap();
        let out = lift_as_operator(&cfg, &store, &args("acme", false), NOW + 1)
            .await
            .unwrap();
        assert_eq!(out.lifted.len(), 1);
        assert!(store.active_restrictions(NOW + 2).await.unwrap().is_empty());
        run(
            RestrictedCmd::List {
                tenant: Some("acme".into()),
                all: true,
            },
            &cfg,
            &store,
            true,
        )
        .await
        .unwrap();
    }
}
