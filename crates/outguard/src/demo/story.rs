//! The story the demo tells, step by step, with real SMTP submissions to the real relay: set up
//! two tenants with the operator's CLI; a normal user's clean mail; a sender whose domain has no
//! MX or A; a bulk sender crossing its hourly limit; a compromised account spamming until its
//! spam threshold restricts it; then the restriction, the admin's notification email and the
//! held queue, as the relay recorded them. What it saw is collected in [`Facts`].

use std::path::Path;
use std::time::{Duration, Instant};

use outguard_store::Store;
use outguard_types::model::{MessageFilter, MessageState};

use super::client::{Outcome, Sender};
use super::messages;
use super::narrate::{Deliveries, Pace, excerpt, narrate_accepted, outguard_id};
use super::scene::{RelayProc, World, cli};

pub const STEPS: usize = 6;
pub const ALICE: &str = "alice@acme.example";
pub const MALLORY: &str = "mallory@acme.example";
pub const ACME_ADMIN: &str = "admin@acme.example";
pub const BULK: &str = "newsletter@globex.example";
pub const GLOBEX_ADMIN: &str = "admin@globex.example";
pub const NO_MX: &str = "sales@globex-old.example";
const PASSWORD: &str = "demo-password";

/// What the story observed; the summary and the exit code are computed from it.
#[derive(Debug, Default)]
pub struct Facts {
    pub steps_done: usize,
    pub clean_ids: Vec<String>,
    pub spam_ids: Vec<String>,
    pub no_mx_pool: Option<String>,
    pub bulk_quota_reply: Option<String>,
    pub bulk_restricted_reply: Option<String>,
    pub spam_refused_reply: Option<String>,
    /// (subject, limit) of the compromised account's restriction.
    pub restricted: Option<(String, String)>,
    pub notification_to: Option<String>,
    pub held: usize,
}

/// Everything a step needs.
pub struct Stage<'a> {
    pub pace: Pace,
    pub config: &'a Path,
    pub relay: &'a RelayProc,
    pub world: &'a World,
    pub store: &'a Store,
    pub deliveries: &'a Deliveries,
}

impl Stage<'_> {
    fn sender<'s>(&self, user: &'s str) -> anyhow::Result<Sender<'s>> {
        Ok(Sender {
            addr: self.relay.addr("submission")?,
            user,
            password: PASSWORD,
        })
    }

    /// Submit, narrate the replies, and the verdict of what was queued; returns the queue id.
    async fn submit(
        &self,
        user: &str,
        rcpts: &[String],
        data: &str,
    ) -> anyhow::Result<(Outcome, Option<String>)> {
        let out = self.sender(user)?.send(rcpts, data).await?;
        if let Some(r) = &out.refused {
            self.pace.say(&format!("{user}: refused: {r}"));
            return Ok((out, None));
        }
        for (to, r) in rcpts.iter().zip(&out.rcpt_replies) {
            if !r.starts_with("250") {
                self.pace.say(&format!("{user}: RCPT TO:<{to}> → {r}"));
            }
        }
        let id = out.queued_id();
        match (&out.final_reply, &id) {
            (Some(_), Some(id)) => {
                let ok = out
                    .rcpt_replies
                    .iter()
                    .filter(|r| r.starts_with("250"))
                    .count();
                self.deliveries.expect(id);
                self.pace
                    .say(&format!("{user} → {ok} recipient(s): 250 queued as {id}"));
                narrate_accepted(&self.pace, self.store, id).await;
                // Its delivery under its own block, after the verdict.
                self.deliveries
                    .show(&self.pace, self.store, id, Duration::from_secs(5))
                    .await;
            }
            (Some(r), None) => self.pace.say(&format!("{user}: DATA → {r}")),
            (None, _) => {}
        }
        Ok((out, id))
    }
}

/// Step 1, before the relay starts: tenants, domains, accounts and policies, with the CLI.
pub async fn provision(pace: &Pace, config: &Path) -> anyhow::Result<()> {
    pace.step(1, STEPS, "Setting up two tenants with the operator's CLI");
    let run = |args: &'static [&'static str]| async move {
        pace.say(&format!("$ outguard {}", args.join(" ")));
        cli(config, args, None).await
    };
    run(&["tenant", "add", "acme"]).await?;
    run(&["tenant", "add", "globex"]).await?;
    run(&["domain", "add", "--tenant", "acme", "acme.example"]).await?;
    run(&["domain", "add", "--tenant", "globex", "globex.example"]).await?;
    run(&["domain", "add", "--tenant", "globex", "globex-old.example"]).await?;
    for (tenant, who) in [
        ("acme", ALICE),
        ("acme", MALLORY),
        ("globex", BULK),
        ("globex", NO_MX),
    ] {
        pace.say(&format!(
            "$ echo … | outguard account add --tenant {tenant} {who} --password-stdin"
        ));
        cli(
            config,
            &[
                "account",
                "add",
                "--tenant",
                tenant,
                who,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .await?;
    }
    run(&[
        "policy",
        "set",
        "--tenant",
        "acme",
        "spam_messages_per_hour=3",
        "notify_recipients=admin@acme.example",
    ])
    .await?;
    run(&[
        "policy",
        "set",
        "--tenant",
        "globex",
        "recipient_limit_external_per_hour=10",
        "notify_recipients=admin@globex.example",
    ])
    .await?;
    pace.say("(small limits, so the story happens in seconds; the service defaults are 10 spam/hour and 500 external recipients/hour)");
    Ok(())
}

/// Steps 2–6 against the running relay.
pub async fn tell(stage: &Stage<'_>, facts: &mut Facts) -> anyhow::Result<()> {
    let p = stage.pace;
    p.step(
        2,
        STEPS,
        "A normal user: alice@acme.example writes to colleagues at example.com",
    );
    for n in 0..2 {
        let (_, id) = stage
            .submit(
                ALICE,
                &["bob@example.com".to_string()],
                &messages::clean(ALICE, "bob@example.com", n),
            )
            .await?;
        facts.clean_ids.extend(id);
        p.pause(1.5).await;
    }
    facts.steps_done = 2;

    p.step(
        3,
        STEPS,
        "A sender whose domain has neither MX nor A: sales@globex-old.example",
    );
    let (_, id) = stage
        .submit(
            NO_MX,
            &["laurent@example.com".to_string()],
            &messages::clean(NO_MX, "laurent@example.com", 2),
        )
        .await?;
    if let Some(id) = id {
        let m = stage.store.message(&id).await.ok().flatten();
        facts.no_mx_pool = m.and_then(|m| m.pool);
    }
    p.pause(1.5).await;
    facts.steps_done = 3;

    p.step(4, STEPS, "A bulk sender: newsletter@globex.example mails its list (limit: 10 external recipients/hour)");
    bulk(stage, facts).await?;
    facts.steps_done = 4;

    p.step(
        5,
        STEPS,
        "A compromised account: mallory@acme.example starts sending spam (limit: 3 spam/hour)",
    );
    compromised(stage, facts).await?;
    facts.steps_done = 5;

    p.step(6, STEPS, "What the relay did about it");
    aftermath(stage, facts).await?;
    facts.steps_done = 6;
    Ok(())
}

async fn bulk(stage: &Stage<'_>, facts: &mut Facts) -> anyhow::Result<()> {
    let p = stage.pace;
    for batch in 0..4 {
        let rcpts: Vec<String> = (0..4)
            .map(|i| format!("member{}@example.com", batch * 4 + i + 1))
            .collect();
        p.say(&format!(
            "{BULK}: batch {} to {} … {}",
            batch + 1,
            rcpts[0],
            rcpts[3]
        ));
        let (out, _) = stage
            .submit(
                BULK,
                &rcpts,
                &messages::newsletter(BULK, "members@example.com", batch),
            )
            .await?;
        if let Some(r) = out.rcpt_replies.iter().find(|r| r.starts_with("550")) {
            facts.bulk_quota_reply.get_or_insert_with(|| r.clone());
        }
        if let Some(r) = out.refused.filter(|r| r.starts_with("550")) {
            facts.bulk_restricted_reply = Some(r);
            break;
        }
        p.pause(1.0).await;
    }
    Ok(())
}

async fn compromised(stage: &Stage<'_>, facts: &mut Facts) -> anyhow::Result<()> {
    let p = stage.pace;
    p.say("(example.net greylists: what mallory sends there waits in the queue for a retry)");
    let targets = [
        "jordan@example.com",
        "kim@example.net",
        "lee@example.net",
        "sam@example.com",
    ];
    for (n, to) in targets.iter().enumerate() {
        let (out, id) = stage
            .submit(MALLORY, &[to.to_string()], &messages::spam(MALLORY, to, n))
            .await?;
        if n == 0 {
            // The first one leaves before anything looks wrong: let it reach example.com.
            if let Some(id) = &id {
                wait_delivered(stage.world, id, Duration::from_secs(15)).await;
            }
        }
        facts.spam_ids.extend(id);
        if let Some(r) = out.refused.filter(|r| r.starts_with("550")) {
            facts.spam_refused_reply = Some(r);
            break;
        }
        p.pause(1.0).await;
    }
    Ok(())
}

/// Wait until a destination MX received the message with this queue id (or the timeout).
async fn wait_delivered(world: &World, id: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let seen = world.sinks().iter().any(|(_, s)| {
            s.messages()
                .iter()
                .any(|m| outguard_id(&m.data).as_deref() == Some(id))
        });
        if seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The restriction, the notification email as the admin's mailbox received it, the held queue.
async fn aftermath(stage: &Stage<'_>, facts: &mut Facts) -> anyhow::Result<()> {
    let p = stage.pace;
    let now = outguard_types::time::now_ms();
    for s in stage.store.list_restrictions_at(None, Some(now)).await? {
        let r = &s.restriction;
        let counts: Vec<String> = r.reason.counts.iter().map(ToString::to_string).collect();
        p.say(&format!(
            "restricted: {} (tenant {}) by {}: {}",
            r.subject.id(),
            r.tenant,
            r.reason.limit.as_str(),
            counts.join("; ")
        ));
        if !r.reason.top_spam_reasons.is_empty() {
            p.say(&format!(
                "  top spam reasons: {}",
                r.reason.top_spam_reasons.join(", ")
            ));
        }
        p.say(&format!(
            "  until: {}",
            r.until.map_or_else(|| "an admin lifts it".into(), fmt_time)
        ));
        if r.subject.id().eq_ignore_ascii_case(MALLORY) {
            facts.restricted = Some((MALLORY.to_string(), r.reason.limit.as_str().to_string()));
        }
    }
    notification(stage, facts).await;
    p.pause(1.0).await;
    let held = stage
        .store
        .search_messages(&MessageFilter {
            state: Some(MessageState::Held),
            limit: Some(100),
            ..MessageFilter::default()
        })
        .await?;
    p.say(&format!(
        "held queue ({} message(s); `outguard queue list --state held`):",
        held.len()
    ));
    for m in &held {
        p.say(&format!(
            "  {}  {} → {}  \"{}\"",
            m.id,
            m.mail_from,
            m.rcpts.join(","),
            m.subject.as_deref().unwrap_or("")
        ));
    }
    facts.held = held
        .iter()
        .filter(|m| m.mail_from.eq_ignore_ascii_case(MALLORY))
        .count();
    Ok(())
}

fn fmt_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

async fn notification(stage: &Stage<'_>, facts: &mut Facts) {
    let p = stage.pace;
    let deadline = Instant::now() + Duration::from_secs(20);
    let note = loop {
        let got = stage.world.mailboxes.messages();
        if let Some(m) = got
            .into_iter()
            .find(|m| m.rcpts.iter().any(|r| r.eq_ignore_ascii_case(ACME_ADMIN)))
        {
            break Some(m);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(note) = note else {
        p.say(&format!(
            "no notification reached {ACME_ADMIN}'s mailbox within 20 s"
        ));
        return;
    };
    let (subject, lines) = excerpt(&note.data, 6);
    p.say(&format!(
        "notification email in {ACME_ADMIN}'s mailbox (from {} via {}):",
        note.mail_from,
        note.peer.ip()
    ));
    p.say(&format!("  Subject: {subject}"));
    for l in lines {
        p.say(&format!("  | {l}"));
    }
    facts.notification_to = Some(ACME_ADMIN.to_string());
    if let Some(g) = stage
        .world
        .mailboxes
        .messages()
        .iter()
        .find(|m| m.rcpts.iter().any(|r| r.eq_ignore_ascii_case(GLOBEX_ADMIN)))
    {
        p.say(&format!(
            "(and {GLOBEX_ADMIN} got one about the bulk sender: \"{}\")",
            excerpt(&g.data, 0).0
        ));
    }
}
