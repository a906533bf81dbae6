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

pub(super) async fn ui_login(f: &Fixture, token: &str, forged_sid: Option<&str>) -> String {
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

pub(super) async fn ui_get(f: &Fixture, sid: &str, path: &str) -> (StatusCode, String) {
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
