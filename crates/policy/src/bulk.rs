//! The bulk-sender compliance gate (issue 25 part 4), the pure half: when a message belongs to
//! a bulk stream, what the Gmail / Yahoo / Outlook.com sender requirements ask of it, and what
//! the tenant's policy does about each requirement it misses. The relay gathers the facts
//! (headers, DKIM signatures verified with mail-auth, DNS answers) in `outguard_relay::bulk`.
//!
//! - A stream (tenant + From domain) is bulk when the message is *marked* ([`marked`]:
//!   `List-Unsubscribe`, or `Precedence: bulk | list`) or when the stream sent more than
//!   `[bulk] provider_recipients_per_day` recipients in the last 24 hours to one provider's
//!   domains ([`count`], hourly buckets in the [`SignalStore`]: in-process or Redis, a day of
//!   buckets per key, one key per stream and provider).
//! - The checks ([`Check`]), each [`Outcome::Pass`], [`Outcome::Fail`] or [`Outcome::Unknown`]
//!   (our DNS could not tell: never acted on, only shown):
//!   - `dkim`: a DKIM signature whose `d=` is aligned (relaxed: same organisational domain) with
//!     the From domain, either the client's (verified here) or ours at delivery (`[[dkim]]`
//!     configured for the envelope sender's domain, which is the domain we sign with);
//!   - `spf`: the envelope sender's domain aligned with the From domain *and* publishing an SPF
//!     record. We do not evaluate the record against an IP: the pool and IP a message leaves
//!     from are chosen at delivery, so at DATA time the honest check is "the domain has a
//!     policy"; whether our pools' IPs are in it is the operator's setup;
//!   - `dmarc`: a DMARC record (`v=DMARC1`, any `p=`) at `_dmarc.<From domain>`, else at
//!     `_dmarc.<organisational domain>` (RFC 7489 §6.6.3);
//!   - `one_click` (RFC 8058): `List-Unsubscribe` with an `https:` URI, `List-Unsubscribe-Post:
//!     List-Unsubscribe=One-Click`, and, when the client signed the message with DKIM, both
//!     headers covered by a signature's `h=` (RFC 8058 §4). Our own signature covers them.
//! - The action of a failing check is the policy's `bulk_<check>_action`: `warn` (trace and the
//!   compliance page only), `high-risk` (the `high-risk` pool) or `reject` (`550 5.7.26` naming
//!   each requirement missed). The strictest action of the failing checks wins.
//!
//! The organisational domain ([`org_domain`]) is an approximation, not the Public Suffix List:
//! the last two labels, or three when the last two are a well-known two-level public suffix
//! (`co.uk`, `com.au` …, [`TWO_LEVEL_SUFFIXES`]). Private suffixes (`github.io`…) and deeper
//! public suffixes are not known, so two tenants' domains under one of them would count as
//! aligned with each other; both are domains a tenant has verified, so the error is on the side
//! of a missed warning, never of a rejected compliant message.

use outguard_types::model::Millis;
use outguard_types::policy::{BulkAction, BulkActions};

use crate::counters::CounterError;
use crate::reply::Reject;
use crate::signals::SignalStore;

/// Two-level public suffixes under which a registrable domain has three labels.
pub const TWO_LEVEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "sch.uk",
    "com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "net.nz", "co.jp",
    "ne.jp", "or.jp", "ac.jp", "go.jp", "co.za", "org.za", "com.br", "net.br", "org.br", "com.mx",
    "com.ar", "com.cn", "net.cn", "org.cn", "com.tw", "co.in", "net.in", "org.in", "co.kr",
    "or.kr", "com.sg", "com.hk", "co.il", "com.tr", "co.id", "com.my", "com.ph", "com.pl", "co.at",
    "or.at", "com.ua", "co.th",
];

/// The organisational domain of `domain` (lowercase, no trailing dot): see the module doc.
pub fn org_domain(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return d;
    }
    let last_two = labels[n - 2..].join(".");
    let keep = if TWO_LEVEL_SUFFIXES.contains(&last_two.as_str()) {
        3
    } else {
        2
    };
    labels[n.saturating_sub(keep)..].join(".")
}

/// Relaxed alignment (RFC 7489 §3.1): the same organisational domain.
pub fn aligned(a: &str, b: &str) -> bool {
    !a.trim().is_empty() && !b.trim().is_empty() && org_domain(a) == org_domain(b)
}

/// Why a message is marked bulk by its own headers, if it is.
pub fn marked(list_unsubscribe: bool, precedence: Option<&str>) -> Option<String> {
    if list_unsubscribe {
        return Some("List-Unsubscribe header".into());
    }
    let p = precedence?.trim().to_ascii_lowercase();
    matches!(p.as_str(), "bulk" | "list").then(|| format!("Precedence: {p}"))
}

/// One sender requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    Dkim,
    Spf,
    Dmarc,
    OneClick,
}

impl Check {
    pub const ALL: [Check; 4] = [Check::Dkim, Check::Spf, Check::Dmarc, Check::OneClick];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Dkim => "dkim",
            Check::Spf => "spf",
            Check::Dmarc => "dmarc",
            Check::OneClick => "one_click",
        }
    }

    /// What the requirement asks, as the `5.7.26` text says it.
    pub fn requirement(self) -> &'static str {
        match self {
            Check::Dkim => "a DKIM signature aligned with its From domain",
            Check::Spf => "an envelope sender aligned with its From domain and publishing SPF",
            Check::Dmarc => "a DMARC record",
            Check::OneClick => {
                "one-click unsubscribe (List-Unsubscribe with https and List-Unsubscribe-Post)"
            }
        }
    }

    pub fn action(self, a: &BulkActions) -> BulkAction {
        match self {
            Check::Dkim => a.dkim,
            Check::Spf => a.spf,
            Check::Dmarc => a.dmarc,
            Check::OneClick => a.unsubscribe,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Our DNS could not tell: shown, never acted on.
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One check's result with what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: Check,
    pub outcome: Outcome,
    pub detail: String,
}

fn finding(check: Check, outcome: Outcome, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        outcome,
        detail: detail.into(),
    }
}

/// What DNS said about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found,
    Missing,
    /// The resolver failed (SERVFAIL, timeout): the reason.
    Unknown(String),
}

/// A client's DKIM signature on the submitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSignature {
    /// `d=`, lowercase.
    pub domain: String,
    /// Verified by us: `Some(true)` pass, `Some(false)` fail, `None` DNS could not tell.
    pub verified: Option<bool>,
    /// `h=`, lowercase header names.
    pub signed_headers: Vec<String>,
}

/// The `dkim` check: an aligned client signature that verifies, or ours at delivery (`ours`:
/// the domain we will sign with, when a key is configured for it).
pub fn dkim(from: &str, client: &[ClientSignature], ours: Option<&str>) -> Finding {
    if let Some(s) = client
        .iter()
        .find(|s| s.verified == Some(true) && aligned(&s.domain, from))
    {
        return finding(
            Check::Dkim,
            Outcome::Pass,
            format!("signed by d={}", s.domain),
        );
    }
    if let Some(d) = ours.filter(|d| aligned(d, from)) {
        return finding(
            Check::Dkim,
            Outcome::Pass,
            format!("signed at delivery with d={d}"),
        );
    }
    if let Some(s) = client
        .iter()
        .find(|s| s.verified.is_none() && aligned(&s.domain, from))
    {
        return finding(
            Check::Dkim,
            Outcome::Unknown,
            format!("signature d={} could not be verified (DNS)", s.domain),
        );
    }
    let seen: Vec<String> = client
        .iter()
        .map(|s| match s.verified {
            Some(true) => format!("d={} (not aligned)", s.domain),
            Some(false) => format!("d={} (does not verify)", s.domain),
            None => format!("d={} (not aligned, unverified)", s.domain),
        })
        .chain(ours.map(|d| format!("ours d={d} (not aligned)")))
        .collect();
    let detail = if seen.is_empty() {
        format!("no DKIM signature for {from}, and no [[dkim]] key for the envelope domain")
    } else {
        format!("no DKIM signature aligned with {from}: {}", seen.join(", "))
    };
    finding(Check::Dkim, Outcome::Fail, detail)
}

/// The `spf` check: the envelope domain aligned with From, and its SPF record.
pub fn spf(from: &str, envelope: Option<&str>, record: &Lookup) -> Finding {
    let Some(env) = envelope.filter(|e| !e.is_empty()) else {
        return finding(Check::Spf, Outcome::Fail, "null envelope sender");
    };
    if !aligned(env, from) {
        return finding(
            Check::Spf,
            Outcome::Fail,
            format!("envelope domain {env} is not aligned with {from}"),
        );
    }
    match record {
        Lookup::Found => finding(Check::Spf, Outcome::Pass, format!("{env} publishes SPF")),
        Lookup::Missing => finding(
            Check::Spf,
            Outcome::Fail,
            format!("no SPF record (v=spf1) at {env}"),
        ),
        Lookup::Unknown(e) => finding(
            Check::Spf,
            Outcome::Unknown,
            format!("SPF at {env} unknown: {e}"),
        ),
    }
}

/// The `dmarc` check: the record at the From domain, else at its organisational domain
/// (`at_org` is None when they are the same name).
pub fn dmarc(from: &str, at_from: &Lookup, at_org: Option<&Lookup>) -> Finding {
    let org = org_domain(from);
    match (at_from, at_org) {
        (Lookup::Found, _) => finding(Check::Dmarc, Outcome::Pass, format!("_dmarc.{from}")),
        (_, Some(Lookup::Found)) => finding(Check::Dmarc, Outcome::Pass, format!("_dmarc.{org}")),
        (Lookup::Unknown(e), _) | (_, Some(Lookup::Unknown(e))) => finding(
            Check::Dmarc,
            Outcome::Unknown,
            format!("DMARC for {from} unknown: {e}"),
        ),
        _ => finding(
            Check::Dmarc,
            Outcome::Fail,
            format!("no DMARC record at _dmarc.{org}"),
        ),
    }
}

/// The `one_click` check (RFC 8058) on the raw header values. `client_signed`: the client's
/// DKIM signatures' `h=` lists (empty: the client did not sign; ours covers both headers).
pub fn one_click(
    list_unsubscribe: Option<&str>,
    list_unsubscribe_post: Option<&str>,
    client_signed: &[&[String]],
) -> Finding {
    let Some(lu) = list_unsubscribe else {
        return finding(Check::OneClick, Outcome::Fail, "no List-Unsubscribe header");
    };
    let https = lu
        .split(',')
        .map(|u| {
            u.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .any(|u| u.len() > 8 && u[..8].eq_ignore_ascii_case("https://"));
    if !https {
        return finding(
            Check::OneClick,
            Outcome::Fail,
            "List-Unsubscribe has no https: URI",
        );
    }
    let post_ok = list_unsubscribe_post
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("List-Unsubscribe=One-Click"));
    if !post_ok {
        return finding(
            Check::OneClick,
            Outcome::Fail,
            "no List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        );
    }
    let covers = |h: &[String]| {
        ["list-unsubscribe", "list-unsubscribe-post"]
            .iter()
            .all(|want| h.iter().any(|x| x.eq_ignore_ascii_case(want)))
    };
    if !client_signed.is_empty() && !client_signed.iter().any(|h| covers(h)) {
        return finding(
            Check::OneClick,
            Outcome::Fail,
            "the client's DKIM signature does not cover List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4)",
        );
    }
    finding(
        Check::OneClick,
        Outcome::Pass,
        "https URI and one-click POST",
    )
}

/// What the gate does with one bulk message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// The strictest action of the failing checks (`None`: nothing failed).
    pub action: Option<BulkAction>,
    /// `550 5.7.26` when the action is `reject`.
    pub reject: Option<Reject>,
    /// The failing checks, in [`Check::ALL`] order.
    pub failed: Vec<Check>,
    /// One trace line: the stream, why it is bulk, each check.
    pub measure: String,
}

/// The refusal naming every requirement that rejects.
pub fn reject(domain: &str, missed: &[Check]) -> Reject {
    let needs: Vec<&str> = missed.iter().map(|c| c.requirement()).collect();
    Reject::new(
        550,
        "5.7.26",
        format!(
            "Bulk mail from {domain} needs {} (Gmail/Yahoo/Outlook sender requirements)",
            needs.join(" and ")
        ),
    )
}

/// Apply the policy's actions to the findings of one bulk message from `domain`.
pub fn decide(domain: &str, why: &str, findings: &[Finding], actions: &BulkActions) -> Gate {
    let failed: Vec<Check> = findings
        .iter()
        .filter(|f| f.outcome == Outcome::Fail)
        .map(|f| f.check)
        .collect();
    let action = failed.iter().map(|c| c.action(actions)).max();
    let rejecting: Vec<Check> = failed
        .iter()
        .copied()
        .filter(|c| c.action(actions) == BulkAction::Reject)
        .collect();
    let reject = (!rejecting.is_empty()).then(|| reject(domain, &rejecting));
    let each: Vec<String> = findings
        .iter()
        .map(|f| {
            let act = match f.outcome {
                Outcome::Fail => format!(" → {}", f.check.action(actions).as_str()),
                _ => String::new(),
            };
            format!(
                "{} {} ({}){act}",
                f.check.as_str(),
                f.outcome.as_str(),
                f.detail
            )
        })
        .collect();
    let verdict = match &failed[..] {
        [] => "compliant".to_string(),
        f => format!(
            "FAILED {}",
            f.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    Gate {
        action,
        reject,
        failed,
        measure: format!(
            "bulk stream {domain} ({why}): {verdict}; {}",
            each.join("; ")
        ),
    }
}

/// Hours a stream's volume is summed over.
pub const DAY_HOURS: u32 = 24;

/// The signal store key of a stream's messages.
pub fn messages_key(tenant: &str, domain: &str) -> String {
    format!("bulk:m:{tenant}:{}", domain.to_ascii_lowercase())
}

/// The signal store key of a stream's recipients at one provider.
pub fn provider_key(tenant: &str, domain: &str, provider: &str) -> String {
    format!(
        "bulk:p:{tenant}:{}:{}",
        domain.to_ascii_lowercase(),
        provider.to_ascii_lowercase()
    )
}

/// A stream's last 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume {
    pub messages: u64,
    /// The provider with the most recipients, and how many.
    pub top_provider: Option<(String, u64)>,
}

/// Count one message of a stream (`per_provider`: its recipients at each provider; `n = 0`
/// only reads) and return the stream's last 24 hours.
pub async fn count(
    store: &dyn SignalStore,
    tenant: &str,
    domain: &str,
    per_provider: &[(String, u64)],
    providers: &[String],
    messages: u64,
    now: Millis,
) -> Result<Volume, CounterError> {
    let m = store
        .hourly(&messages_key(tenant, domain), messages, now, DAY_HOURS)
        .await?;
    let mut top: Option<(String, u64)> = None;
    for p in providers {
        let n = per_provider
            .iter()
            .find(|(name, _)| name == p)
            .map_or(0, |(_, n)| *n);
        let day: u64 = store
            .hourly(&provider_key(tenant, domain, p), n, now, DAY_HOURS)
            .await?
            .iter()
            .sum();
        if day > 0 && top.as_ref().is_none_or(|(_, t)| day > *t) {
            top = Some((p.clone(), day));
        }
    }
    Ok(Volume {
        messages: m.iter().sum(),
        top_provider: top,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisational_domains() {
        for (d, want) in [
            ("example.com", "example.com"),
            ("mail.example.com", "example.com"),
            ("a.b.Example.COM.", "example.com"),
            ("news.shop.co.uk", "shop.co.uk"),
            ("shop.co.uk", "shop.co.uk"),
            ("co.uk", "co.uk"),
            ("x.y.com.au", "y.com.au"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(org_domain(d), want, "{d}");
        }
    }

    #[test]
    fn relaxed_alignment() {
        assert!(aligned("mail.example.com", "example.com"));
        assert!(aligned("bounce.example.com", "news.example.com"));
        assert!(!aligned("example.net", "example.com"));
        assert!(!aligned("a.co.uk", "b.co.uk"), "co.uk is a public suffix");
        assert!(aligned("x.a.co.uk", "a.co.uk"));
        assert!(!aligned("", "example.com"));
    }

    #[test]
    fn marking() {
        assert_eq!(
            marked(true, None).as_deref(),
            Some("List-Unsubscribe header")
        );
        assert_eq!(
            marked(false, Some(" Bulk ")).as_deref(),
            Some("Precedence: bulk")
        );
        assert_eq!(
            marked(false, Some("list")).as_deref(),
            Some("Precedence: list")
        );
        assert_eq!(marked(false, Some("junk")), None);
        assert_eq!(marked(false, None), None);
    }

    fn sig(d: &str, verified: Option<bool>, h: &[&str]) -> ClientSignature {
        ClientSignature {
            domain: d.into(),
            verified,
            signed_headers: h.iter().map(|x| x.to_string()).collect(),
        }
    }

    #[test]
    fn dkim_table() {
        let f = "news.example.com";
        let cases: Vec<(Vec<ClientSignature>, Option<&str>, Outcome)> = vec![
            (
                vec![sig("example.com", Some(true), &[])],
                None,
                Outcome::Pass,
            ),
            (
                vec![sig("esp.example", Some(true), &[])],
                None,
                Outcome::Fail,
            ),
            (
                vec![sig("example.com", Some(false), &[])],
                None,
                Outcome::Fail,
            ),
            (vec![sig("example.com", None, &[])], None, Outcome::Unknown),
            (vec![], Some("example.com"), Outcome::Pass),
            (vec![], Some("other.example"), Outcome::Fail),
            (vec![], None, Outcome::Fail),
            (
                vec![sig("example.com", Some(false), &[])],
                Some("example.com"),
                Outcome::Pass,
            ),
        ];
        for (client, ours, want) in cases {
            let got = dkim(f, &client, ours);
            assert_eq!(got.outcome, want, "{client:?} {ours:?}: {}", got.detail);
        }
    }

    #[test]
    fn spf_and_dmarc_tables() {
        let f = "example.com";
        assert_eq!(
            spf(f, Some("bounces.example.com"), &Lookup::Found).outcome,
            Outcome::Pass
        );
        assert_eq!(
            spf(f, Some("esp.example"), &Lookup::Found).outcome,
            Outcome::Fail
        );
        assert_eq!(
            spf(f, Some("example.com"), &Lookup::Missing).outcome,
            Outcome::Fail
        );
        assert_eq!(spf(f, None, &Lookup::Found).outcome, Outcome::Fail);
        assert_eq!(
            spf(f, Some("example.com"), &Lookup::Unknown("timeout".into())).outcome,
            Outcome::Unknown
        );
        assert_eq!(dmarc(f, &Lookup::Found, None).outcome, Outcome::Pass);
        assert_eq!(
            dmarc("n.example.com", &Lookup::Missing, Some(&Lookup::Found)).outcome,
            Outcome::Pass
        );
        let miss = dmarc("n.example.com", &Lookup::Missing, Some(&Lookup::Missing));
        assert_eq!(miss.outcome, Outcome::Fail);
        assert!(
            miss.detail.contains("_dmarc.example.com"),
            "{}",
            miss.detail
        );
        assert_eq!(
            dmarc(f, &Lookup::Unknown("servfail".into()), None).outcome,
            Outcome::Unknown
        );
    }

    #[test]
    fn one_click_table() {
        let h = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let both = h(&["from", "list-unsubscribe", "List-Unsubscribe-Post"]);
        let only_from = h(&["from"]);
        let post = Some("List-Unsubscribe=One-Click");
        let lu = Some("<mailto:u@example.com>, <https://example.com/u?x=1>");
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Vec<&'a [String]>, Outcome);
        let cases: Vec<Case<'_>> = vec![
            (lu, post, vec![], Outcome::Pass),
            (lu, post, vec![&both], Outcome::Pass),
            (lu, post, vec![&only_from], Outcome::Fail),
            (lu, post, vec![&only_from, &both], Outcome::Pass),
            (Some("<mailto:u@example.com>"), post, vec![], Outcome::Fail),
            (Some("<http://example.com/u>"), post, vec![], Outcome::Fail),
            (lu, None, vec![], Outcome::Fail),
            (lu, Some("List-Unsubscribe=Yes"), vec![], Outcome::Fail),
            (None, post, vec![], Outcome::Fail),
        ];
        for (l, p, signed, want) in cases {
            let got = one_click(l, p, &signed);
            assert_eq!(got.outcome, want, "{l:?} {p:?}: {}", got.detail);
        }
    }

    #[test]
    fn the_strictest_action_wins_and_reject_names_each_requirement() {
        let fs = vec![
            finding(Check::Dkim, Outcome::Pass, "ok"),
            finding(Check::Spf, Outcome::Fail, "no spf"),
            finding(Check::Dmarc, Outcome::Fail, "no dmarc"),
            finding(Check::OneClick, Outcome::Unknown, "dns"),
        ];
        let warn = decide(
            "example.com",
            "List-Unsubscribe header",
            &fs,
            &BulkActions::default(),
        );
        assert_eq!(warn.action, Some(BulkAction::Warn));
        assert!(warn.reject.is_none());
        assert_eq!(warn.failed, vec![Check::Spf, Check::Dmarc]);
        assert!(
            warn.measure.contains("FAILED spf, dmarc"),
            "{}",
            warn.measure
        );
        assert!(
            warn.measure.contains("dmarc fail (no dmarc) → warn"),
            "{}",
            warn.measure
        );
        let actions = BulkActions {
            dmarc: BulkAction::Reject,
            spf: BulkAction::HighRisk,
            ..BulkActions::default()
        };
        let g = decide("example.com", "x", &fs, &actions);
        assert_eq!(g.action, Some(BulkAction::Reject));
        let r = g.reject.expect("reject");
        assert_eq!((r.code, r.enhanced.as_str()), (550, "5.7.26"));
        assert_eq!(
            r.text,
            "Bulk mail from example.com needs a DMARC record (Gmail/Yahoo/Outlook sender requirements)"
        );
        let ok = decide("example.com", "x", &fs[..1], &actions);
        assert_eq!((ok.action, ok.failed.len()), (None, 0));
        assert!(ok.measure.contains("compliant"), "{}", ok.measure);
        let unknown_only = decide("example.com", "x", &fs[3..], &actions);
        assert_eq!(unknown_only.action, None, "DNS trouble is never acted on");
    }
}
