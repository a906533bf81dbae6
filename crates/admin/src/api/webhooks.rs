//! `/api/v1/webhooks` (SPEC §3/§5): webhook subscriptions kept in the store, delivered beside
//! the config's `[[webhooks]]` with the same JSON body, HMAC-SHA256 signature and retries
//! (`outguard_relay::webhooks`). A tenant role manages its own tenant's subscriptions (its alerts only);
//! an operator may also make tenant-less ones (every alert, service-wide included) and sees the
//! config's webhooks listed read-only (`"source": "config"`). The secret is returned once, at
//! creation, never in a list. Changes are audited and take effect on this node before the call
//! returns, on the others within about a second.
//!
//! SPEC §9: a subscription made here, by any role, may only reach a host whose every address
//! is public (`outguard_relay::webhooks::addr`; `[webhooks] allow_private` opens ranges): the URL is
//! parsed and its host resolved and checked before anything is stored (422 otherwise), and the
//! sender checks again at every attempt. Only the config file's hooks are unrestricted.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outguard_store::StoredWebhook;
pub use outguard_types::api::NewWebhook;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiJson, ApiResult, ErrorBody};
use super::{AppState, TenantQuery};

use crate::ops;
use crate::ops::webhooks::CONFIG_ID_PREFIX;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    /// `null`: every tenant's alerts and the service-wide ones.
    pub tenant: Option<String>,
    pub url: String,
    /// Alert kinds sent; empty: every kind.
    pub kinds: Vec<String>,
    /// `store` (made through the API, deletable) or `config` (`[[webhooks.hooks]]` in the file, read-only).
    pub source: String,
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
}

impl From<StoredWebhook> for WebhookView {
    fn from(w: StoredWebhook) -> Self {
        WebhookView {
            id: w.id,
            tenant: w.tenant,
            url: w.url,
            kinds: w.kinds,
            source: "store".into(),
            created_at: Some(w.created_at),
            created_by: Some(w.created_by),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret, shown this once.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(TenantQuery),
    responses((status = 200, body = Vec<WebhookView>), (status = 404, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<WebhookView>>> {
    let asked = q.tenant.as_deref().filter(|t| !t.is_empty());
    let scope = caller.list_scope(asked)?;
    let mut out: Vec<WebhookView> = Vec::new();
    if scope.is_none() {
        // Operators without a tenant filter: the config's webhooks first, read-only.
        out.extend(
            s.relay
                .cfg
                .webhooks
                .hooks
                .iter()
                .enumerate()
                .map(|(i, c)| WebhookView {
                    id: format!("{CONFIG_ID_PREFIX}{}", i + 1),
                    tenant: None,
                    url: c.url.clone(),
                    kinds: c.kinds.clone(),
                    source: "config".into(),
                    created_at: None,
                    created_by: None,
                }),
        );
    }
    let stored = s.relay.store.list_webhooks(scope.as_deref()).await?;
    out.extend(
        stored
            .into_iter()
            .filter(|w| caller.sees(w.tenant.as_deref()))
            .map(WebhookView::from),
    );
    Ok(Json(out))
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let (stored, secret) = ops::webhooks::add(
        &s.relay.store,
        &caller.ops_actor(),
        &s.relay.webhooks,
        &body,
        s.relay.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: stored.into(),
            secret,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ops::webhooks::remove(&s.relay.store, &caller.ops_actor(), &s.relay.webhooks, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::webhooks::{MIN_SECRET, validate};

    fn body(url: &str, secret: Option<&str>, kinds: &[&str]) -> NewWebhook {
        NewWebhook {
            tenant: None,
            url: url.into(),
            secret: secret.map(str::to_string),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn validation_table() {
        let ok = [
            body("http://127.0.0.1:8080/h", Some("0123456789abcdef"), &[]),
            body("http://hooks.example/x?y=1", None, &["ip_listed"]),
            body(
                "http://[::1]:9/",
                None,
                &["user_restricted", "user_restricted"],
            ),
            body("http://localhost:1/", None, &[]),
        ];
        for b in &ok {
            let r = validate(b);
            assert!(r.is_ok(), "{b:?}: {r:?}");
        }
        let (kinds, secret) = validate(&ok[2]).unwrap();
        assert_eq!(kinds, vec!["user_restricted"], "deduplicated");
        assert!(secret.len() >= MIN_SECRET, "generated: {secret}");
        let bad: [(NewWebhook, &str); 9] = [
            (
                body("gopher://h.example/", None, &[]),
                "only http:// and https://",
            ),
            (body("ftp://h.example/", None, &[]), "only http://"),
            (body("http://h_ost!/", None, &[]), "not a valid host"),
            (body("http://single/", None, &[]), "not a valid host"),
            (body("http://h.example:0/", None, &[]), "bad port"),
            (body("http://h.example:70000/", None, &[]), "bad port"),
            (body("http://h.example/", Some("short"), &[]), "at least 16"),
            (body("http://h.example/", None, &["nope"]), "kinds: `nope`"),
            (
                body("http://h.example/", Some("0123456789abcdef\n"), &[]),
                "control",
            ),
        ];
        for (b, want) in &bad {
            let e = validate(b).expect_err(&format!("{b:?} must fail"));
            assert!(e.contains(want), "{b:?}: {e} lacks {want}");
        }
    }
}

/// The resource through the in-process router (the shared fixture: tenants a and b, an operator,
/// a tenant_admin and a tenant_reader of a).
#[cfg(test)]
mod api_tests {
    use axum::http::StatusCode;
    use serde_json::Value;

    use crate::api::tests::{call, fixture};
    use crate::ops::webhooks::MIN_SECRET;

    const HOOK: &str = "http://127.0.0.1:9/hook";

    fn ids(list: &Value) -> Vec<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|w| w["id"].as_str().expect("id").to_string())
            .collect()
    }

    #[tokio::test]
    async fn role_matrix_and_secret_shown_once() {
        let f = fixture().await;
        let (op, admin, reader) = (
            Some(f.op.as_str()),
            Some(f.admin.as_str()),
            Some(f.reader.as_str()),
        );
        let post = |t, body: String| {
            let app = f.app.clone();
            async move { call(&app, "POST", "/api/v1/webhooks", t, Some(&body)).await }
        };
        let plain = format!(r#"{{"url":"{HOOK}","kinds":["user_restricted"]}}"#);

        let (st, j) = post(reader, plain.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{j}");
        let (st, _) = post(admin, format!(r#"{{"tenant":"b","url":"{HOOK}"}}"#)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "another tenant looks missing");

        let (st, a) = post(admin, plain.clone()).await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        assert_eq!(a["tenant"], "a", "a tenant_admin's own tenant by default");
        assert_eq!(a["kinds"], serde_json::json!(["user_restricted"]));
        assert_eq!(a["source"], "store");
        assert!(a["created_by"].as_str().unwrap().starts_with("token:"));
        let generated = a["secret"].as_str().expect("secret shown once");
        assert!(generated.len() >= MIN_SECRET, "{generated}");

        let (st, b) = post(
            op,
            format!(r#"{{"tenant":"b","url":"{HOOK}","secret":"0123456789abcdefXY"}}"#),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["secret"], "0123456789abcdefXY", "a chosen secret is kept");
        let (st, all) = post(op, format!(r#"{{"url":"{HOOK}"}}"#)).await;
        assert_eq!(st, StatusCode::CREATED, "{all}");
        assert_eq!(
            all["tenant"],
            Value::Null,
            "an operator's tenant-less subscription"
        );
        let (st, _) = post(op, format!(r#"{{"tenant":"zz","url":"{HOOK}"}}"#)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "unknown tenant");
        let (a_id, b_id, all_id) = (
            a["id"].as_str().unwrap().to_string(),
            b["id"].as_str().unwrap().to_string(),
            all["id"].as_str().unwrap().to_string(),
        );

        // Lists: tenant roles see their tenant's only; nobody ever sees a secret again.
        for (token, want) in [
            (admin, vec![a_id.clone()]),
            (reader, vec![a_id.clone()]),
            (op, vec![a_id.clone(), b_id.clone(), all_id.clone()]),
        ] {
            let (st, list) = call(&f.app, "GET", "/api/v1/webhooks", token, None).await;
            assert_eq!(st, StatusCode::OK, "{list}");
            assert_eq!(ids(&list), want);
            assert!(!list.to_string().contains("secret"), "no secret in {list}");
            assert!(!list.to_string().contains(generated));
        }
        let (st, list) = call(&f.app, "GET", "/api/v1/webhooks?tenant=b", op, None).await;
        assert_eq!((st, ids(&list)), (StatusCode::OK, vec![b_id.clone()]));
        let (st, _) = call(&f.app, "GET", "/api/v1/webhooks?tenant=b", admin, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = call(&f.app, "GET", "/api/v1/webhooks", None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);

        // Deletes: another tenant's and the tenant-less one look missing to a tenant role.
        let del = |id: &str, t| {
            let (app, uri) = (f.app.clone(), format!("/api/v1/webhooks/{id}"));
            async move { call(&app, "DELETE", &uri, t, None).await.0 }
        };
        assert_eq!(del(&b_id, admin).await, StatusCode::NOT_FOUND);
        assert_eq!(del(&all_id, admin).await, StatusCode::NOT_FOUND);
        assert_eq!(del(&b_id, reader).await, StatusCode::NOT_FOUND);
        assert_eq!(del(&a_id, reader).await, StatusCode::FORBIDDEN);
        assert_eq!(del(&a_id, admin).await, StatusCode::NO_CONTENT);
        assert_eq!(del(&a_id, admin).await, StatusCode::NOT_FOUND);
        assert_eq!(del(&b_id, op).await, StatusCode::NO_CONTENT);
        assert_eq!(del("nope", op).await, StatusCode::NOT_FOUND);
        let (st, j) = call(&f.app, "DELETE", "/api/v1/webhooks/config-1", op, None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{j}");
        assert!(
            j["error"]["message"]
                .as_str()
                .unwrap()
                .contains("config file")
        );
        let (_, list) = call(&f.app, "GET", "/api/v1/webhooks", op, None).await;
        assert_eq!(ids(&list), vec![all_id.clone()]);

        // Audited: who created and deleted what.
        let log = f.relay.store.audit_log(100).await.expect("audit");
        let actions: Vec<(&str, &str)> = log
            .iter()
            .filter(|e| e.action.starts_with("webhook."))
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        for want in [
            ("webhook.create", a_id.as_str()),
            ("webhook.create", b_id.as_str()),
            ("webhook.create", all_id.as_str()),
            ("webhook.delete", a_id.as_str()),
            ("webhook.delete", b_id.as_str()),
        ] {
            assert!(actions.contains(&want), "{want:?} in {actions:?}");
        }
        assert_eq!(
            actions.len(),
            5,
            "failed calls are not audited: {actions:?}"
        );
        assert!(
            !format!("{log:?}").contains("0123456789abcdefXY"),
            "no secret in the audit log"
        );
    }

    #[tokio::test]
    async fn bad_bodies_are_422_with_a_message() {
        let f = fixture().await;
        let op = Some(f.op.as_str());
        let rows: &[(&str, &str)] = &[
            (r#"{"url":"ftp://h.example/x"}"#, "only http://"),
            (r#"{"url":"http://u:p@h.example/x"}"#, "user info"),
            (r#"{"url":"http://h.example/\u001b[2J"}"#, "control"),
            // Not public (the fixture opens only 127.0.0.0/8 and ::1 through allow_private).
            (r#"{"url":"http://10.0.0.1/"}"#, "10.0.0.1 is private"),
            (
                r#"{"url":"http://169.254.169.254/latest/meta-data/"}"#,
                "cloud metadata",
            ),
            (r#"{"url":"https://[::ffff:192.168.0.1]/"}"#, "private"),
            (r#"{"url":"http://0.0.0.0:8025/"}"#, "unspecified"),
            (r#"{"url":"http://bad host/"}"#, "url:"),
            (r#"{"url":"http://h.example:99999/"}"#, "bad port"),
            (
                r#"{"url":"http://h.example/","secret":"short"}"#,
                "at least 16",
            ),
            (
                r#"{"url":"http://h.example/","kinds":["user_restricted","bogus"]}"#,
                "bogus",
            ),
            (
                r#"{"url":"http://h.example/","kinds":"ip_listed"}"#,
                "kinds",
            ),
            (r#"{"url":"http://h.example/","colour":"red"}"#, "colour"),
            (r#"{"kinds":[]}"#, "url"),
        ];
        for &(body, want) in rows {
            let (st, j) = call(&f.app, "POST", "/api/v1/webhooks", op, Some(body)).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {j}");
            assert_eq!(j["error"]["code"], "invalid", "{body}: {j}");
            let msg = j["error"]["message"].as_str().unwrap_or("");
            assert!(msg.contains(want), "{body}: `{msg}` lacks `{want}`");
        }
        let (st, _) = call(&f.app, "POST", "/api/v1/webhooks", op, Some("{not json")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (_, list) = call(&f.app, "GET", "/api/v1/webhooks", op, None).await;
        assert_eq!(list, serde_json::json!([]), "nothing stored");
    }
}
