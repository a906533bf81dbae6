//! UI sessions: a login exchanges an API token for a random session id in a cookie (HttpOnly,
//! SameSite=Strict, Path=/). Each session has its own CSRF token that every form posts back.
//! Session fixation: a fresh id is minted at every login and a client-supplied id that the
//! server did not issue is never adopted. The token behind a session is re-resolved through the
//! store on every request, so revoking it ends the session at once.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use outguard_types::model::Millis;
use rand::Rng as _;
use subtle::ConstantTimeEq as _;

use crate::api::AppState;
use crate::api::auth::{Caller, client_ip, resolve};
use crate::trace::now_ms;

pub const SESSION_COOKIE: &str = "og_session";
/// Pre-login CSRF cookie (double submit): the login form must echo it.
pub const LOGIN_COOKIE: &str = "og_login";
/// Sessions end this long after login.
pub const SESSION_TTL: Millis = 8 * 3_600_000;
/// At most this many live sessions; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    secret: String,
    csrf: String,
    expires: Millis,
}

/// Live sessions, in memory (a restart logs everyone out, which is acceptable for an admin UI).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// A random URL-safe token of 32 bytes.
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for a verified token secret; returns (session id, csrf token).
    pub fn start(&self, secret: &str, now: Millis) -> (String, String) {
        let (id, csrf) = (random_token(), random_token());
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                secret: secret.to_string(),
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        (id, csrf)
    }

    /// (token secret, csrf) of a live session.
    fn get(&self, id: &str, now: Millis) -> Option<(String, String)> {
        let map = self.lock();
        map.get(id)
            .filter(|s| s.expires > now)
            .map(|s| (s.secret.clone(), s.csrf.clone()))
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
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
        let (secret, csrf) = state.sessions.get(&sid, now_ms()).ok_or_else(to_login)?;
        match resolve(state, &secret).await {
            Ok(token) => Ok(UiUser {
                caller: Caller {
                    token,
                    ip: client_ip(parts),
                },
                sid,
                csrf,
            }),
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => {
                state.sessions.end(&sid);
                Err(to_login())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}
