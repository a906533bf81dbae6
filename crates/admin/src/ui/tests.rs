//! In-process tests of the web UI (router driven with `oneshot`, fixture from `api::tests`):
//! login with the double-submit CSRF cookie, no session fixation, CSRF on every form, tenant
//! scope on every page, escaped previews, security headers, logout, and revocation ending a
//! session at once.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use outguard_types::model::{MessageState, Role};

use crate::api::tests::{Fixture, fixture, send};

fn cookie_of(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|r| r.split(';').next().unwrap_or("").to_string())
        })
}

pub(crate) async fn ui_login(f: &Fixture, token: &str, forged_sid: Option<&str>) -> String {
    let (_, _, h) = send(
        &f.app,
        Request::get("/login").body(Body::empty()).expect("req"),
    )
    .await;
    let pre = cookie_of(&h, "og_login").expect("login cookie");
    let mut cookie = format!("og_login={pre}");
    if let Some(sid) = forged_sid {
        cookie.push_str(&format!("; og_session={sid}"));
    }
    let form = format!("token={token}&csrf={pre}");
    let req = Request::post("/login")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .expect("req");
    let (s, _, h) = send(&f.app, req).await;
    assert_eq!(s, 303);
    let set = h
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    cookie_of(&h, "og_session").expect("session cookie")
}

pub(crate) async fn ui_get(f: &Fixture, sid: &str, path: &str) -> (StatusCode, String) {
    let req = Request::get(path)
        .header(header::COOKIE, format!("og_session={sid}"))
        .body(Body::empty())
        .expect("req");
    let (s, body, _) = send(&f.app, req).await;
    (s, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn ui_login_csrf_and_scope() {
    let f = fixture().await;
    // No session → login page.
    assert_eq!(ui_get(&f, "nope", "/").await.0, 303);
    // Login without the CSRF echo is refused.
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={}", f.admin)))
        .expect("req");
    assert_eq!(send(&f.app, req).await.0, 403);
    // Fixation: a session id the client chose is never adopted.
    let sid = ui_login(&f, &f.admin, Some("attacker-chosen")).await;
    assert_ne!(sid, "attacker-chosen");
    assert_eq!(ui_get(&f, "attacker-chosen", "/").await.0, 303);
    let (s, page) = ui_get(&f, &sid, "/").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("<svg") && page.contains("tenant a"), "{page}");
    let (s, q) = ui_get(&f, &sid, "/queue").await;
    assert_eq!(s, 200);
    assert!(
        q.contains(&f.qa) && !q.contains(&f.qb),
        "tenant admin sees only its tenant's queue"
    );
    assert_eq!(ui_get(&f, &sid, &format!("/queue/{}", f.qb)).await.0, 404);
    let (_, prev) = ui_get(&f, &sid, &format!("/queue/{}", f.qa)).await;
    assert!(
        prev.contains("&lt;script&gt;alert(1)") && !prev.contains("<script>"),
        "preview escapes the message: {prev}"
    );
    let (s, t) = ui_get(&f, &sid, &format!("/trace/{}", f.ma)).await;
    assert_eq!(s, 200);
    assert!(
        t.contains("id=\"timeline\"") && t.contains("received"),
        "{t}"
    );
    // A form post without the CSRF token is 403 and changes nothing; with it, it works.
    let post = |csrf: Option<&str>| {
        let form = match csrf {
            Some(c) => format!("action=release&csrf={c}"),
            None => "action=release".to_string(),
        };
        Request::post(format!("/queue/{}", f.qa))
            .header(header::COOKIE, format!("og_session={sid}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("req")
    };
    assert_eq!(send(&f.app, post(None)).await.0, 403);
    assert_eq!(send(&f.app, post(Some("wrong"))).await.0, 403);
    assert!(
        f.relay
            .queue
            .list()
            .iter()
            .any(|i| i.id == f.qa && i.state == MessageState::Held)
    );
    let csrf = {
        let (_, html) = ui_get(&f, &sid, "/queue").await;
        let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        html[at..].split('"').next().expect("value").to_string()
    };
    assert_eq!(send(&f.app, post(Some(&csrf))).await.0, 303);
    assert!(
        !f.relay
            .queue
            .list()
            .iter()
            .any(|i| i.id == f.qa && i.state == MessageState::Held),
        "released"
    );
    // Security headers on every UI page: no scripts at all, no framing.
    let req = Request::get("/login").body(Body::empty()).expect("req");
    let (_, _, h) = send(&f.app, req).await;
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Logging out needs the CSRF token and ends the session.
    let logout = |csrf: &str| {
        Request::post("/logout")
            .header(header::COOKIE, format!("og_session={sid}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}")))
            .expect("req")
    };
    assert_eq!(send(&f.app, logout("wrong")).await.0, 403);
    assert_eq!(send(&f.app, logout(&csrf)).await.0, 303);
    assert_eq!(ui_get(&f, &sid, "/").await.0, 303, "session ended");
    let sid = ui_login(&f, &f.admin, None).await;
    assert_eq!(ui_get(&f, &sid, "/").await.0, 200);
    // Revoking the token behind a session ends it at once.
    let tokens = f.relay.store.list_tokens().await.expect("tokens");
    let admin_id = tokens
        .iter()
        .find(|t| t.role == Role::TenantAdmin)
        .expect("admin")
        .id
        .clone();
    f.relay.store.revoke_token(&admin_id).await.expect("revoke");
    assert_eq!(ui_get(&f, &sid, "/").await.0, 303);
}

fn recent(
    id: &str,
    tenant: &str,
    from: &str,
    at: i64,
    state: MessageState,
    spam: bool,
) -> outguard_types::model::MessageRecord {
    outguard_types::model::MessageRecord {
        id: id.into(),
        tenant: Some(tenant.into()),
        submitter: outguard_types::model::Submitter::Account(from.into()),
        mail_from: from.into(),
        rcpts: vec!["x@dest.example".into()],
        header_from: None,
        message_id_header: None,
        subject: None,
        size: 10,
        received_at: at,
        state,
        pool: Some(if spam { "high-risk" } else { "regular" }.into()),
        class: Some(if spam {
            outguard_types::verdict::Class::Spam
        } else {
            outguard_types::verdict::Class::Clean
        }),
        score: None,
        node: "n1".into(),
        body_digest: None,
    }
}

/// The dashboard's charts from records in the (temp SQLite) store: one series per disposition
/// with its values, the spam ratio, complaints per hour and per account; a tenant admin sees
/// only its tenant, an operator picks one.
#[tokio::test]
async fn dashboard_charts_from_the_store_per_tenant() {
    let f = fixture().await;
    let st = &f.relay.store;
    let hour = crate::api::stats::HOUR_MS;
    let at = (outguard_types::time::now_ms() - 2 * hour).div_euclid(hour) * hour + 1;
    let d = MessageState::Delivered;
    for (id, t, from, state, spam) in [
        ("d1", "a", "alice@a.example", d, false),
        ("d2", "a", "alice@a.example", d, false),
        ("d3", "a", "alice@a.example", d, false),
        ("r1", "a", "mallory@a.example", MessageState::Rejected, true),
        (
            "q1",
            "a",
            "mallory@a.example",
            MessageState::Quarantined,
            true,
        ),
        ("b1", "a", "alice@a.example", MessageState::Bounced, false),
        ("o1", "b", "carol@b.example", d, false),
        ("o2", "b", "carol@b.example", MessageState::Held, false),
    ] {
        st.insert_message(&recent(id, t, from, at, state, spam))
            .await
            .expect("insert");
    }
    for (id, tenant, account) in [
        ("f1", "a", "alice@a.example"),
        ("f2", "a", "alice@a.example"),
        ("f3", "b", "carol@b.example"),
    ] {
        let rec = outguard_store::FblRecord {
            id: id.into(),
            attributed: Some(outguard_store::FblAttribution {
                message_id: "d1".into(),
                account: Some(account.into()),
                tenant: Some(tenant.into()),
            }),
            feedback_type: "abuse".into(),
            source_ip: None,
            received_at: at + 5,
            malformed: None,
            fields: serde_json::json!({}),
            trusted: true,
            trusted_by: None,
            raw: String::new(),
        };
        st.insert_fbl_report(&rec, b"raw").await.expect("fbl");
    }
    let clock = crate::ui::layout::when(at - 1)[11..16].to_string();

    let sid = ui_login(&f, &f.admin, None).await;
    let (s, page) = ui_get(&f, &sid, "/").await;
    assert_eq!(s, 200, "{page}");
    for want in [
        "<title id=\"by-disposition-title\">Messages per hour by disposition</title>",
        "Totals: delivered 3, quarantined 1, bounced 1, rejected 1.",
        &format!("<title>{clock}: delivered: 3</title>"),
        &format!("<title>{clock}: rejected: 1</title>"),
        &format!("<title>{clock}: high-risk: 2</title>"),
        &format!("<title>{clock}: 33.3 % (2 of 6)</title>"),
        &format!("<title>{clock}: complaints: 2</title>"),
        "<td>alice@a.example</td><td>a</td><td>2</td>",
        "6 messages, 2 called spam (33.3 %), 2 complaints.",
    ] {
        assert!(page.contains(want), "missing {want}: {page}");
    }
    assert!(
        !page.contains("carol@b.example") && !page.contains("held 1"),
        "tenant a never sees tenant b's mail or complaints"
    );
    // Asking for another tenant is 404, exactly like a missing one.
    assert_eq!(ui_get(&f, &sid, "/?tenant=b").await.0, 404);

    let op = ui_login(&f, &f.op, None).await;
    let (_, all) = ui_get(&f, &op, "/").await;
    assert!(all.contains("Dashboard: all tenants"), "{all}");
    assert!(
        all.contains("Totals: delivered 4, held 1, quarantined 1, bounced 1, rejected 1."),
        "{all}"
    );
    assert!(
        all.contains(&format!("<title>{clock}: complaints: 3</title>")),
        "{all}"
    );
    let (_, only_b) = ui_get(&f, &op, "/?tenant=b").await;
    assert!(only_b.contains("Dashboard: tenant b"), "{only_b}");
    assert!(only_b.contains("Totals: delivered 1, held 1."), "{only_b}");
    assert!(!only_b.contains("alice@a.example"), "{only_b}");
}

/// The pools page shows each IP's DNSBL listing (zone, code, TXT reason, last check) from the
/// monitor's state in the store, to operators; tenant roles see rotation only.
#[tokio::test]
async fn pools_page_shows_dnsbl_listing() {
    let f = fixture().await;
    let ip = f.relay.cfg.pools[0].source_ips[0].to_string();
    let check = |zone: &str, status: &str, code: Option<&str>, reason: Option<&str>| {
        outguard_store::DnsblCheck {
            ip: ip.clone(),
            zone: zone.into(),
            checked_at: 1_700_000_000_000,
            status: status.into(),
            code: code.map(str::to_string),
            reason: reason.map(str::to_string),
        }
    };
    let st = &f.relay.store;
    st.record_dnsbl_check(&check(
        "bl.example",
        "listed",
        Some("127.0.0.2"),
        Some("Listed for spam, see https://bl.example/lookup"),
    ))
    .await
    .expect("record");
    st.record_dnsbl_check(&check("clean.example", "clean", None, None))
        .await
        .expect("record");
    let op = ui_login(&f, &f.op, None).await;
    let (s, page) = ui_get(&f, &op, "/pools").await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains(&format!("<th scope=\"row\">{ip}</th>")),
        "{page}"
    );
    assert!(
        page.contains("listed on bl.example</strong> (<code>127.0.0.2</code>): Listed for spam, see https://bl.example/lookup"),
        "{page}"
    );
    assert!(!page.contains("listed on clean.example"), "{page}");
    assert!(
        page.contains("2023-11-14 22:13:20 UTC"),
        "last checked: {page}"
    );
    let admin = ui_login(&f, &f.admin, None).await;
    let (s, page) = ui_get(&f, &admin, "/pools").await;
    assert_eq!(s, 200);
    assert!(page.contains(&ip) && !page.contains("bl.example"), "{page}");
}

/// Sessions are in the store: a second app over the same store (a restarted server) accepts
/// the cookie; an expired session is refused; logout deletes the row.
#[tokio::test]
async fn sessions_survive_a_new_app_and_expire() {
    let f = fixture().await;
    let sid = ui_login(&f, &f.admin, None).await;
    let again = crate::api::tests::Fixture {
        app: crate::http::app(crate::api::AppState::new(f.relay.clone())),
        ..f
    };
    assert_eq!(
        ui_get(&again, &sid, "/").await.0,
        200,
        "new app, same store"
    );
    let now = outguard_types::time::now_ms();
    let live = again.relay.store.ui_session(&sid, now).await.expect("get");
    assert!(live.is_some());
    let expired = again
        .relay
        .store
        .ui_session(&sid, now + crate::ui::session::SESSION_TTL + 1)
        .await
        .expect("get");
    assert!(expired.is_none(), "expiry enforced by the lookup");
}

/// The trust ramp in the admin views (issue 25 part 2): an account created today and one set
/// back by a spam verdict show their clean day and reduced limits — in
/// `GET /api/v1/accounts/{address}` and on the restricted page — each only to its tenant's
/// admin and the operator; an old account with no setback is not on the ramp.
#[tokio::test]
async fn trust_ramp_accounts_are_shown_to_their_tenant() {
    let f = crate::api::tests::fixture_with(|c| {
        c.trust_ramp.enabled = true;
        c.trust_ramp.start_percent = 10;
        c.trust_ramp.days = 14;
    })
    .await;
    let now = f.relay.clock.now_ms();
    f.relay
        .store
        .add_account("a", "dave@a.example", Some("pw"), now)
        .await
        .expect("account");
    f.relay
        .store
        .add_account("b", "erin@b.example", Some("pw"), now)
        .await
        .expect("account");
    outguard_policy::ramp::note_setback(&*f.relay.enforcer.signals, "alice@a.example", 14, now)
        .await
        .expect("setback");

    let get = |token: &str, who: &str| {
        Request::get(format!("/api/v1/accounts/{who}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("req")
    };
    let (s, body, _) = send(&f.app, get(&f.admin, "dave@a.example")).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["trust_ramp"]["clean_day"], 1, "{v}");
    assert_eq!(v["trust_ramp"]["limits_percent"], 10, "{v}");
    let (_, body, _) = send(&f.app, get(&f.admin, "alice@a.example")).await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["trust_ramp"]["clean_day"], 1,
        "a setback restarts it: {v}"
    );
    let (_, body, _) = send(&f.app, get(&f.op, "carol@b.example")).await;
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(v.get("trust_ramp").is_none(), "an old account: {v}");
    let (s, _, _) = send(&f.app, get(&f.admin, "erin@b.example")).await;
    assert_eq!(s, 404, "another tenant's account");

    let sid = ui_login(&f, &f.admin, None).await;
    let (s, page) = ui_get(&f, &sid, "/restricted").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Accounts on the trust ramp"), "{page}");
    assert!(page.contains("dave@a.example") && page.contains("alice@a.example"));
    assert!(page.contains("1 of 14") && page.contains("10 %"), "{page}");
    assert!(
        !page.contains("erin@b.example"),
        "another tenant's account is listed"
    );
    let sid = ui_login(&f, &f.op, None).await;
    let (_, page) = ui_get(&f, &sid, "/restricted").await;
    assert!(page.contains("erin@b.example") && page.contains("dave@a.example"));
    assert!(
        !page.contains("carol@b.example"),
        "an old account is not on the ramp"
    );
}
