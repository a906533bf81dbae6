//! UI sessions: a login exchanges an API token for a random session id in a cookie (HttpOnly,
//! SameSite=Strict, Path=/). Each session has its own CSRF token that every form posts back.
//! Sessions live in the records store (only the id's SHA-256; see `outguard_store::UiSession`), so
//! a server restart or another cluster node keeps everyone logged in. Session fixation: a fresh
//! id is minted at every login and a client-supplied id that the server did not issue is never
//! adopted. The token behind a session is joined on every request, so revoking it ends the
//! session at once; expiry is enforced by the same lookup.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use outguard_store::{Store, StoreError, UiSession};
use outguard_types::model::{Millis, TokenInfo};
use rand::Rng as _;
use subtle::ConstantTimeEq as _;

use crate::api::AppState;
use crate::api::auth::{Caller, client_ip};
use crate::api::error::ApiError;

pub const SESSION_COOKIE: &str = "og_session";
/// Pre-login CSRF cookie (double submit): the login form must echo it.
pub const LOGIN_COOKIE: &str = "og_login";
/// Sessions end this long after login.
pub const SESSION_TTL: Millis = 8 * 3_600_000;
/// `last_seen` is written at most this often per session (not on every page view).
const TOUCH_EVERY: Millis = 60_000;

/// The UI's sessions, kept in the records store.
pub struct Sessions {
    store: Store,
}

/// A random URL-safe token of 32 bytes.
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl Sessions {
    pub fn new(store: Store) -> Sessions {
        Sessions { store }
    }

    /// Starts a session for a verified token; returns (session id, csrf token). Expired
    /// sessions are swept here (logins are rare; page views do not pay for it).
    pub async fn start(
        &self,
        token: &TokenInfo,
        now: Millis,
    ) -> Result<(String, String), StoreError> {
        if let Err(e) = self.store.prune_ui_sessions(now).await {
            tracing::warn!(error = %e, "cannot prune expired UI sessions");
        }
        let (id, csrf) = (random_token(), random_token());
        self.store
            .create_ui_session(&id, &token.id, &csrf, now, now + SESSION_TTL)
            .await?;
        Ok((id, csrf))
    }

    /// The live session `id` (unknown, expired and revoked-token sessions are `None`).
    pub async fn get(&self, id: &str, now: Millis) -> Result<Option<UiSession>, StoreError> {
        let found = self.store.ui_session(id, now).await?;
        if let Some(s) = &found
            && now - s.last_seen >= TOUCH_EVERY
            && let Err(e) = self.store.touch_ui_session(id, now).await
        {
            tracing::warn!(error = %e, "cannot record UI session use");
        }
        Ok(found)
    }

    pub async fn end(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete_ui_session(id).await
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` header value for the UI's cookies.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> (axum::http::HeaderName, String) {
    (
        SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}"),
    )
}

/// Constant-time string equality (CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A form post without the session's CSRF token: 403.
#[derive(Debug)]
pub struct CsrfRejected;

impl IntoResponse for CsrfRejected {
    fn into_response(self) -> Response {
        (
            axum::http::StatusCode::FORBIDDEN,
            "missing or wrong CSRF token",
        )
            .into_response()
    }
}

/// A logged-in UI user: the API caller behind the session, and the session's CSRF token.
pub struct UiUser {
    pub caller: Caller,
    pub sid: String,
    pub csrf: String,
}

impl UiUser {
    /// Refused unless the posted form's `csrf` matches this session's.
    pub fn check_csrf(&self, posted: Option<&str>) -> Result<(), CsrfRejected> {
        match posted {
            Some(p) if same(p, &self.csrf) => Ok(()),
            _ => Err(CsrfRejected),
        }
    }
}

impl FromRequestParts<AppState> for UiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<UiUser, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let sid = cookie(parts, SESSION_COOKIE)
            .ok_or_else(to_login)?
            .to_string();
        let session = state
            .sessions
            .get(&sid, state.relay.clock.now_ms())
            .await
            .map_err(|e| ApiError::from(e).into_response())?
            .ok_or_else(to_login)?;
        Ok(UiUser {
            caller: Caller {
                token: session.token,
                ip: client_ip(parts),
            },
            sid,
            csrf: session.csrf,
        })
    }
}
