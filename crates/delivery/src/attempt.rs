//! One delivery round for one message: group the pending recipients by domain, route each
//! domain, pick a source IP of the message's pool, take the connection permits (global and per
//! destination site), try the hops in order, and record an outcome per recipient. Trace events
//! for routing and every attempt are emitted here; the queue decides what happens next. The
//! recipients a next hop accepted are recorded in the spool as soon as its reply to the dot
//! arrives, before the round's other domains finish (exactly-once under `kill -9`, issue 17).
//!
//! Traffic shaping (issue 22, `shaping`): before connecting, the (source IP, destination) pair
//! is asked whether the message may go now; if not, the domain's recipients are deferred to
//! the pair's next slot. After the attempt a throttling reply slows the pair down and a success
//! brings it back up. Both kinds of deferral leave the round uncounted and say when to retry.
//!
//! TLS: each domain gets one policy (`tls_policy`); DANE (`dane_plan`, issue 21) may then hold
//! single MX hosts to their TLSA records instead (`hop_tls`), host by host.

use std::collections::BTreeMap;
use std::sync::Arc;

use outguard_store::spool::{Envelope, RcptState, RcptStatus, State};
use outguard_types::config::TlsPolicy;
use outguard_types::model::EventKind;
use rustls::ClientConfig;
use serde_json::json;

use super::client::{self, Attempt, AttemptError, AttemptResult, RcptOutcome};
use super::dane::{self, DaneVerifier, HostDane};
use super::mta_sts::apply::StsUse;
use super::mx::{Hop, Route, RouteError};
use super::pools::Source;
use super::queue::Inner;
use super::reuse::MAX_USES;
use super::shaping::{Admit, Change, Shaped};
use super::wire;

/// The least wait before a throttled domain is tried again, whatever the pair says.
const MIN_SHAPED_WAIT_MS: i64 = 1000;

/// What one round produced.
#[derive(Debug, Default)]
pub struct Round {
    /// The new state of every recipient that was tried.
    pub results: Vec<(String, RcptState)>,
    /// Some domain was held back or throttled: try again at this time (Unix ms) at the latest.
    pub shaped_until: Option<i64>,
    /// Some domain was really attempted (not held back, not throttled): the round counts as an
    /// attempt for the retry schedule.
    pub counted: bool,
}

/// One domain's part of a round.
struct DomainRound {
    results: Vec<(String, RcptState)>,
    shaped_until: Option<i64>,
}

impl DomainRound {
    fn plain(results: Vec<(String, RcptState)>) -> DomainRound {
        DomainRound {
            results,
            shaped_until: None,
        }
    }
}

/// The recipient's domain (after the last `@`), lowercased.
pub fn domain_of(rcpt: &str) -> String {
    rcpt.rsplit_once('@')
        .map_or(rcpt, |(_, d)| d)
        .to_ascii_lowercase()
}

/// Whether `rcpt` gets the envelope's extra headers (`Envelope::extra_headers_to`).
fn gets_extra(env: &Envelope, rcpt: &str) -> bool {
    env.extra_headers_to
        .as_ref()
        .is_none_or(|to| to.iter().any(|r| r == rcpt))
}

/// The bytes that follow `DATA`: our headers (+ DKIM signature when configured) and the body;
/// without the envelope's extra headers unless `with_extra`.
pub fn payload(inner: &Inner, env: &Envelope, body: &[u8], with_extra: bool) -> Vec<u8> {
    let extra: &[(String, String)] = if with_extra { &env.extra_headers } else { &[] };
    let headers = wire::prepend_headers(&env.id, extra);
    let sender_domain = domain_of(&env.mail_from);
    if !env.mail_from.is_empty() && !inner.deps.dkim.is_empty() {
        // Sign exactly what goes on the wire: the CRLF-normalised message, before dot-stuffing.
        let normalised = wire::normalize_crlf(&[&headers, body]);
        if let Some(sig) = inner.deps.dkim.sign(&sender_domain, &normalised) {
            return wire::data_payload(&[&sig, &normalised]);
        }
        return wire::data_payload(&[&normalised]);
    }
    wire::data_payload(&[&headers, body])
}

fn state(status: RcptStatus, reply: String, remote: Option<String>) -> RcptState {
    RcptState {
        status,
        reply: Some(reply),
        remote,
    }
}

/// Run one round over the spooled `body`, one delivery per domain. Recipients of one domain
/// that differ in the extra headers they get (a verdict only for the tenant's own) go in
/// separate transactions.
pub async fn run(inner: &Arc<Inner>, env: &Envelope, current: &State, body: &[u8]) -> Round {
    let mut by_domain: BTreeMap<(String, bool), Vec<String>> = BTreeMap::new();
    for rcpt in current.pending(env) {
        by_domain
            .entry((domain_of(rcpt), gets_extra(env, rcpt)))
            .or_default()
            .push(rcpt.to_string());
    }
    let mut payloads: [Option<Vec<u8>>; 2] = [None, None];
    for &(_, with) in by_domain.keys() {
        payloads[usize::from(with)].get_or_insert_with(|| payload(inner, env, body, with));
    }
    let rounds = by_domain.into_iter().map(|((domain, with), rcpts)| {
        let p = payloads[usize::from(with)].as_deref().unwrap_or_default();
        deliver_domain(inner, env, domain, rcpts, p)
    });
    let mut round = Round::default();
    for d in futures::future::join_all(rounds).await {
        round.results.extend(d.results);
        match d.shaped_until {
            Some(t) => {
                round.shaped_until = Some(round.shaped_until.map_or(t, |u: i64| u.min(t)));
            }
            None => round.counted = true,
        }
    }
    round
}

async fn deliver_domain(
    inner: &Arc<Inner>,
    env: &Envelope,
    domain: String,
    rcpts: Vec<String>,
    payload: &[u8],
) -> DomainRound {
    let all = |st: RcptState| {
        DomainRound::plain(
            rcpts
                .iter()
                .map(|r| (r.clone(), st.clone()))
                .collect::<Vec<_>>(),
        )
    };
    let cfg = &inner.deps.config;
    let mut route = match inner
        .deps
        .resolver
        .route(&domain, &cfg.routes, cfg.delivery.port)
        .await
    {
        Ok(route) => route,
        Err(RouteError::Permanent { status, reason }) => {
            return all(state(
                RcptStatus::Failed,
                format!("550 {status} {reason}"),
                None,
            ));
        }
        Err(RouteError::Temporary { reason }) => {
            inner.trace(
                &env.id,
                EventKind::Deferred,
                format!("{domain}: {reason}"),
                json!({"domain": domain}),
            );
            return all(state(
                RcptStatus::Pending,
                format!("451 4.4.3 {reason}"),
                None,
            ));
        }
    };
    let Some(source) = inner.deps.pools.pick(&env.pool) else {
        return all(state(
            RcptStatus::Pending,
            format!("451 4.4.0 pool {} has no source address", env.pool),
            None,
        ));
    };
    inner.trace(
        &env.id,
        EventKind::Routed,
        format!("{domain} via {} from pool {} ({})", route.site, source.pool, source.ip),
        json!({"domain": domain, "pool": source.pool, "source_ip": source.ip.to_string(), "site": route.site,
               "hops": route.hops.iter().map(|h| format!("{} {}", h.host, h.addr)).collect::<Vec<_>>()}),
    );
    let mut tls = tls_policy(inner, &domain);
    // MTA-STS (RFC 8461) when the operator set no TLS policy for the domain: may narrow the
    // route to the policy's MX hosts and make the policy `verify` (see `mta_sts::apply`).
    if let Err(reply) =
        super::mta_sts::apply::hook(inner, &env.id, &domain, &mut route, &mut tls).await
    {
        return all(state(RcptStatus::Pending, reply, None));
    }
    // DANE then outranks MTA-STS and the default host by host (`hop_tls`).
    let dane = match dane_plan(inner, &domain, &route, &tls).await {
        Ok(plan) => plan,
        Err(e) => {
            inner.trace(
                &env.id,
                EventKind::Deferred,
                format!("{domain}: {e}"),
                json!({"domain": domain}),
            );
            return all(state(RcptStatus::Pending, format!("451 4.4.3 {e}"), None));
        }
    };
    let login = match login(inner, &domain).await {
        Ok(login) => login,
        Err(reason) => {
            inner.trace(
                &env.id,
                EventKind::Deferred,
                format!("{domain}: {reason}"),
                json!({"domain": domain}),
            );
            return all(state(
                RcptStatus::Pending,
                format!("451 4.3.5 {reason}"),
                None,
            ));
        }
    };
    let (shaped, admit) = inner.shaper.admit(
        &domain,
        &route,
        &source.pool,
        source.ip,
        inner.clock.now_ms(),
    );
    let epoch = match admit {
        Admit::Go { epoch } => epoch,
        Admit::Wait { until, mode } => {
            let reply = format!(
                "451 4.7.0 held back by traffic shaping: {} from {} is {}",
                shaped.key.destination,
                source.ip,
                mode.as_str()
            );
            inner.trace(
                &env.id,
                EventKind::DeliveryShaping,
                format!("{domain}: {reply}"),
                json!({"action": "held_back", "domain": domain, "pool": source.pool,
                       "source_ip": source.ip.to_string(), "destination": shaped.key.destination,
                       "state": mode.as_str(), "until": until}),
            );
            let mut d = all(state(RcptStatus::Pending, reply, None));
            d.shaped_until = Some(until);
            return d;
        }
    };
    let _pair_permit = match &shaped.connections {
        Some(sem) => sem.clone().acquire_owned().await.ok(),
        None => None,
    };
    let _permits = inner.permits(&route.site).await;
    let max_uses = shaped.max_messages_per_connection.unwrap_or(MAX_USES);
    let how = How {
        domain: &domain,
        tls,
        dane,
        auth: login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        max_uses,
    };
    let hops = try_hops(inner, env, &route, &source, &rcpts, payload, &how).await;
    let now = inner.clock.now_ms();
    match hops.throttle {
        Some(reply) => {
            let (change, ready) = inner.shaper.throttled(&shaped, epoch, &reply, now);
            if let Some(c) = change {
                trace_change(inner, env, &shaped, &c);
            }
            DomainRound {
                results: hops.results,
                shaped_until: Some(ready.max(now + MIN_SHAPED_WAIT_MS)),
            }
        }
        None => {
            if hops.delivered
                && let Some(c) = inner.shaper.succeeded(&shaped, now)
            {
                trace_change(inner, env, &shaped, &c);
            }
            DomainRound::plain(hops.results)
        }
    }
}

/// The TLS policy for mail to `domain` and where it comes from (for the trace).
#[derive(Debug, Clone)]
pub struct TlsChoice {
    pub policy: TlsPolicy,
    pub source: &'static str,
    /// The destination's MTA-STS policy, when one applies (`mta_sts::apply`).
    pub sts: Option<Arc<StsUse>>,
}

impl TlsChoice {
    /// The policy is `[delivery] tls`: nothing the operator set for this destination.
    pub fn is_default(&self) -> bool {
        self.source == DEFAULT_POLICY && self.sts.is_none()
    }

    /// `TLS policy verify from delivery.tls_policies`, then the MTA-STS policy and, in `testing`
    /// mode, what `enforce` would have made of this attempt to `host` (`tls`: it went inside
    /// TLS; `None`: the attempt failed before any verdict).
    fn describe(&self, host: &str, tls: Option<bool>) -> String {
        let mut s = format!("TLS policy {} from {}", self.policy.as_str(), self.source);
        if let Some(sts) = &self.sts {
            s.push_str(&format!("; {}", sts.describe()));
            if let (Some(t), Some(tls)) = (&sts.testing, tls) {
                let verified = self.policy == TlsPolicy::Verify;
                s.push_str(&format!(": {}", t.verdict(host, tls, verified)));
            }
        }
        s
    }

    /// The trace's `mta_sts` field (`null` without a policy).
    fn sts_json(&self, host: &str, tls: Option<bool>) -> serde_json::Value {
        self.sts.as_ref().map_or(serde_json::Value::Null, |sts| {
            let testing = match (&sts.testing, tls) {
                (Some(t), Some(tls)) => {
                    Some(t.verdict(host, tls, self.policy == TlsPolicy::Verify))
                }
                _ => None,
            };
            json!({"mode": sts.mode.as_str(), "id": sts.id, "got": sts.got.describe(),
                   "testing": testing})
        })
    }
}

/// `[[routes]] tls` of the route that serves `domain`, else `[delivery] tls_policies`, else
/// `[delivery] tls`.
fn tls_policy(inner: &Inner, domain: &str) -> TlsChoice {
    let cfg = &inner.deps.config;
    if let Some(policy) = super::mx::route_config(domain, &cfg.routes).and_then(|(_, r)| r.tls) {
        return TlsChoice {
            policy,
            source: ROUTE_POLICY,
            sts: None,
        };
    }
    let d = domain.trim_end_matches('.');
    let listed = cfg
        .delivery
        .tls_policies
        .iter()
        .find(|(k, _)| k.trim_end_matches('.').eq_ignore_ascii_case(d));
    match listed {
        Some((_, &policy)) => TlsChoice {
            policy,
            source: LISTED_POLICY,
            sts: None,
        },
        None => TlsChoice {
            policy: cfg.delivery.tls,
            source: DEFAULT_POLICY,
            sts: None,
        },
    }
}

/// Where a policy comes from (`TlsChoice::source`): the route, the domain's entry, the default.
const ROUTE_POLICY: &str = "route";
const LISTED_POLICY: &str = "delivery.tls_policies";
const DEFAULT_POLICY: &str = "delivery.tls";
/// The sources of a policy the operator set for the domain itself: DANE does not override them
/// (every other source, the default and MTA-STS, it does).
const OPERATOR_POLICIES: [&str; 2] = [ROUTE_POLICY, LISTED_POLICY];

/// DANE for the MX hosts of `domain` (`dane`): only with `[dns] dnssec = "trust_ad"`, only for
/// MX delivery (not a `[[routes]]` next hop or an address literal), and never over an operator's
/// policy for the domain (`[[routes]] tls`, `[delivery.tls_policies]`); it outranks
/// `[delivery] tls`, whatever that says, and MTA-STS.
async fn dane_plan(
    inner: &Inner,
    domain: &str,
    route: &Route,
    tls: &TlsChoice,
) -> Result<dane::Plan, dane::PlanError> {
    let cfg = &inner.deps.config;
    let Some(dns) = inner.deps.resolver.dnssec() else {
        return Ok(dane::Plan::default());
    };
    if OPERATOR_POLICIES.contains(&tls.source)
        || super::mx::route_config(domain, &cfg.routes).is_some()
        || domain.starts_with('[')
    {
        return Ok(dane::Plan::default());
    }
    let hops: Vec<_> = route
        .hops
        .iter()
        .map(|h| (h.host.clone(), h.addr))
        .collect();
    dane::plan(dns, domain, &hops).await
}

/// The TLS one hop is held to.
struct HopTls {
    policy: TlsPolicy,
    config: Option<Arc<ClientConfig>>,
    /// Where the policy comes from (`delivery.tls_policies`, `tlsa _25._tcp.mx.example`).
    from: String,
    /// DANE's verifier, which knows the record that matched.
    dane: Option<Arc<DaneVerifier>>,
    /// Do not even connect: why.
    refuse: Option<String>,
}

impl HopTls {
    /// The trace's words for the policy of this hop: DANE's record, or the domain's policy
    /// with its MTA-STS part (`TlsChoice::describe`).
    fn describe(&self, tls: &TlsChoice, host: &str, went_tls: Option<bool>) -> String {
        if self.from == tls.source {
            tls.describe(host, went_tls)
        } else {
            format!("TLS policy {} from {}", self.policy.as_str(), self.from)
        }
    }
}

/// The domain's policy for `hop`, or DANE's when the host has TLSA records.
fn hop_tls(inner: &Inner, how: &How<'_>, hop: &Hop) -> HopTls {
    // MTA-STS `testing`: a config that accepts what these policies accept but notes what
    // `verify` would have said.
    let testing = how.tls.sts.as_ref().and_then(|s| s.testing.as_ref());
    let mut t = HopTls {
        policy: how.tls.policy,
        config: match (how.tls.policy, testing.and_then(|t| t.tls.clone())) {
            (TlsPolicy::Verify, _) => inner.deps.verified_tls.clone(),
            (_, Some(recording)) => Some(recording),
            _ => inner.tls.clone(),
        },
        from: how.tls.source.to_string(),
        dane: None,
        refuse: None,
    };
    if t.policy == TlsPolicy::Verify && t.config.is_none() {
        t.refuse = Some("no trust roots (set [delivery] tls_ca_file)".into());
    }
    let Some(host) = how.dane.hosts.get(&hop.host) else {
        return t;
    };
    t.from = format!("tlsa {}", host.owner());
    match host {
        HostDane::Authenticated { owner, records } => {
            let names = vec![hop.host.clone(), how.domain.to_string()];
            let v = Arc::new(DaneVerifier::new(owner, records.clone(), names));
            t.policy = TlsPolicy::Dane;
            t.refuse = None;
            match dane::client_config(v.clone()) {
                Ok(c) => (t.config, t.dane) = (Some(c), Some(v)),
                Err(e) => t.refuse = Some(format!("TLS setup: {e}")),
            }
        }
        HostDane::Encrypt { .. } => {
            (t.policy, t.config, t.refuse) = (TlsPolicy::Required, inner.tls.clone(), None);
            t.from.push_str(" (no usable record)");
        }
        HostDane::Defer { reason, .. } => {
            t.policy = TlsPolicy::Dane;
            t.refuse = Some(reason.clone());
        }
    }
    t
}

/// The smarthost login of the route serving `domain`: (user, password from its file).
async fn login(inner: &Inner, domain: &str) -> Result<Option<(String, String)>, String> {
    let cfg = &inner.deps.config;
    let Some((i, r)) = super::mx::route_config(domain, &cfg.routes) else {
        return Ok(None);
    };
    let (Some(user), Some(file)) = (&r.auth_user, &r.auth_password_file) else {
        return Ok(None);
    };
    match tokio::fs::read_to_string(file).await {
        Ok(text) => Ok(Some((
            user.clone(),
            text.lines().next().unwrap_or_default().to_string(),
        ))),
        Err(e) => Err(format!(
            "routes[{i}].auth_password_file {}: {e}",
            file.display()
        )),
    }
}

/// How every hop of one domain is talked to.
struct How<'a> {
    /// The recipient domain (a reference identifier for DANE-TA certificates).
    domain: &'a str,
    tls: TlsChoice,
    /// The MX hosts DANE holds to their TLSA records.
    dane: dane::Plan,
    auth: Option<(&'a str, &'a str)>,
    /// Messages one connection may carry (a shaping rule's `max_messages_per_connection`).
    max_uses: u32,
}

/// The `delivery_shaping` trace event of a pair's change of rate.
fn trace_change(inner: &Inner, env: &Envelope, s: &Shaped, c: &Change) {
    let rate = c
        .rate
        .map_or_else(|| "unlimited".to_string(), |r| format!("{r:.1}/min"));
    let mut detail = format!(
        "{} from {} (pool {}) {}: rate {rate}",
        s.key.destination, s.key.source_ip, s.pool, c.action
    );
    if let Some(until) = c.suspended_until {
        detail.push_str(&format!(", suspended until {until}"));
    }
    if let Some(why) = c.reason.as_deref().filter(|_| c.action != "faster") {
        detail.push_str(&format!(" after `{why}`"));
    }
    inner.trace(
        &env.id,
        EventKind::DeliveryShaping,
        detail,
        json!({"action": c.action, "state": c.mode.as_str(), "pool": s.pool,
               "source_ip": s.key.source_ip.to_string(), "destination": s.key.destination,
               "messages_per_minute": c.rate, "suspended_until": c.suspended_until,
               "reason": c.reason}),
    );
}

/// What the hops of one route said.
struct Hops {
    results: Vec<(String, RcptState)>,
    /// A reply that matched the throttling patterns.
    throttle: Option<String>,
    /// Some recipient was accepted.
    delivered: bool,
}

/// Try the route's hops in order until one session decides the recipients.
async fn try_hops(
    inner: &Arc<Inner>,
    env: &Envelope,
    route: &Route,
    source: &Source,
    rcpts: &[String],
    payload: &[u8],
    how: &How<'_>,
) -> Hops {
    let cfg = &inner.deps.config;
    let mut last_error = String::from("4.4.1 no usable mail host");
    let mut throttle = None;
    for hop in &route.hops {
        let t = hop_tls(inner, how, hop);
        let policy = t.policy;
        let mut attempt = Attempt {
            source_ip: source.ip,
            ehlo: &source.ehlo,
            hop,
            mail_from: &env.mail_from,
            rcpts,
            payload,
            tls: t.config.clone(),
            tls_policy: policy,
            auth: how.auth,
            connect_timeout: cfg.delivery.connect_timeout,
            command_timeout: cfg.delivery.command_timeout,
            max_uses: how.max_uses,
        };
        let mut result = match &t.refuse {
            Some(reason) => Err(AttemptError::TlsPolicy {
                addr: hop.addr,
                policy,
                reason: reason.clone(),
            }),
            None => client::deliver_reusing(&attempt, &inner.idle).await,
        };
        if let (Err(AttemptError::Tls { .. }), TlsPolicy::Opportunistic) = (&result, policy) {
            // A broken TLS stack on the far side: retry this host in plaintext.
            attempt.tls = None;
            result = client::deliver_reusing(&attempt, &inner.idle).await;
        }
        // Under `verify` / `required` a failed handshake is the policy refusing the host.
        let result = result.map_err(|e| match e {
            AttemptError::Tls { addr, reason } => AttemptError::TlsPolicy {
                addr,
                policy,
                reason: format!("TLS handshake failed: {reason}"),
            },
            e => e,
        });
        match result {
            Ok(r) => {
                // Before anything else (trace, events, the round's other domains): a kill from
                // here on must not send these recipients again.
                record_delivered(inner, env, &r);
                trace_attempt(inner, env, &r, &t, &how.tls);
                let throttle = r.rcpts.iter().find_map(|(_, o)| match o {
                    RcptOutcome::TempFail(t) if inner.shaper.is_throttle(t) => Some(t.clone()),
                    _ => None,
                });
                let delivered = r
                    .rcpts
                    .iter()
                    .any(|(_, o)| matches!(o, RcptOutcome::Delivered(_)));
                return Hops {
                    results: outcomes(&r),
                    throttle,
                    delivered,
                };
            }
            Err(e) => {
                let refused = matches!(e, AttemptError::TlsPolicy { .. });
                let sts_id = how.tls.sts.as_ref().map(|s| s.id.as_str());
                if refused {
                    tracing::warn!(id = %env.id, host = %hop.host, addr = %hop.addr,
                        tls_policy = policy.as_str(), policy_from = %t.from,
                        mta_sts_id = sts_id, error = %e, "delivery refused by TLS policy");
                }
                inner.trace(
                    &env.id,
                    EventKind::Attempt,
                    format!(
                        "{} {} ({}): {e}",
                        hop.host,
                        hop.addr,
                        t.describe(&how.tls, &hop.host, None)
                    ),
                    json!({"remote_host": hop.host, "remote_ip": hop.addr.to_string(),
                           "source_ip": source.ip.to_string(), "error": e.to_string(),
                           "tls_policy": policy.as_str(), "tls_policy_from": t.from,
                           "tls_refused": refused, "mta_sts": how.tls.sts_json(&hop.host, None)}),
                );
                // RFC 3463: X.7.5 cryptographic failure, X.7.8 authentication; else routing.
                let status = match &e {
                    AttemptError::TlsPolicy { .. } => "4.7.5",
                    AttemptError::Auth { .. } => "4.7.8",
                    _ => "4.4.1",
                };
                last_error = format!("{status} {e}");
                // A refusal in the session (a `421 … too many connections` greeting): the
                // provider's other hosts would say the same; slow down instead.
                if let AttemptError::Session { reason, .. } = &e
                    && inner.shaper.is_throttle(reason)
                {
                    throttle = Some(reason.clone());
                    break;
                }
            }
        }
    }
    let reply = format!("451 {last_error}");
    Hops {
        results: rcpts
            .iter()
            .map(|r| (r.clone(), state(RcptStatus::Pending, reply.clone(), None)))
            .collect(),
        throttle,
        delivered: false,
    }
}

/// Append the recipients the next hop just accepted to the message's spool record. Inline, not
/// on the blocking pool: it is one small append to the page cache (microseconds), while a hop
/// through a blocking pool busy with accept fsyncs is the window issue 17 measured (~40 ms).
fn record_delivered(inner: &Inner, env: &Envelope, r: &AttemptResult) {
    let accepted: Vec<&str> = r
        .rcpts
        .iter()
        .filter(|(_, o)| matches!(o, RcptOutcome::Delivered(_)))
        .map(|(rcpt, _)| rcpt.as_str())
        .collect();
    if let Err(e) = inner.deps.spool.record_delivered(&env.id, &accepted) {
        // The state sidecar still records them at the end of the round.
        tracing::error!(id = %env.id, error = %e, "cannot record delivered recipients");
    }
}

fn outcomes(r: &AttemptResult) -> Vec<(String, RcptState)> {
    let remote = Some(r.host.clone());
    r.rcpts
        .iter()
        .map(|(rcpt, o)| {
            let st = match o {
                RcptOutcome::Delivered(t) => {
                    state(RcptStatus::Delivered, t.clone(), remote.clone())
                }
                RcptOutcome::TempFail(t) => state(RcptStatus::Pending, t.clone(), remote.clone()),
                RcptOutcome::PermFail(t) => state(RcptStatus::Failed, t.clone(), remote.clone()),
            };
            (rcpt.clone(), st)
        })
        .collect()
}

fn trace_attempt(inner: &Inner, env: &Envelope, r: &AttemptResult, t: &HopTls, tls: &TlsChoice) {
    let replies: Vec<serde_json::Value> = r
        .rcpts
        .iter()
        .map(|(rcpt, o)| {
            let (result, reply) = match o {
                RcptOutcome::Delivered(t) => ("delivered", t),
                RcptOutcome::TempFail(t) => ("deferred", t),
                RcptOutcome::PermFail(t) => ("failed", t),
            };
            json!({"rcpt": rcpt, "result": result, "reply": reply})
        })
        .collect();
    let first = r.rcpts.first().map(|(_, o)| match o {
        RcptOutcome::Delivered(t) | RcptOutcome::TempFail(t) | RcptOutcome::PermFail(t) => {
            t.as_str()
        }
    });
    // DANE: the record that authenticated the server (none when a parked session was reused).
    let matched = t.dane.as_ref().and_then(|v| v.matched()).map(|m| m.short());
    if let Some(m) = &matched {
        tracing::info!(id = %env.id, host = %r.host, addr = %r.remote, tls_policy_from = %t.from,
            tlsa = %m, "server authenticated by DANE");
    }
    let described = match &matched {
        Some(m) => format!(
            "TLS policy {} from {}, matched {m}",
            r.tls_policy.as_str(),
            t.from
        ),
        None => t.describe(tls, &r.host, Some(r.tls)),
    };
    inner.trace(
        &env.id,
        EventKind::Attempt,
        format!("{} [{}] from {}{} ({}): {}", r.host, r.remote, r.local.ip(), if r.tls { " (TLS)" } else { "" },
                described, first.unwrap_or("")),
        json!({"remote_host": r.host, "remote_ip": r.remote.to_string(), "source_ip": r.local.ip().to_string(),
               "tls": r.tls, "tls_policy": r.tls_policy.as_str(), "tls_policy_from": t.from,
               "tlsa_matched": matched, "mta_sts": tls.sts_json(&r.host, Some(r.tls)), "replies": replies}),
    );
}
