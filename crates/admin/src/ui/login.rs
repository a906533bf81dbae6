//! Login and logout. The login form is protected by a double-submit CSRF cookie; a successful
//! login always mints a new session id (no fixation) and clears the pre-login cookie.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::page;
use super::session::{
    LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL, UiUser, cookie, random_token, same, set_cookie,
};
use crate::api::AppState;
use crate::api::auth::{client_ip, resolve};
use crate::api::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub token: String,
    pub csrf: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

fn render(status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random_token();
    let body = html! {
        @if let Some(e) = error { p.error role="alert" id="login-error" { (e) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            p {
                label for="token" { "API token" }
                input id="token" name="token" type="password" autocomplete="off" required autofocus;
            }
            p { button type="submit" { "Log in" } }
        }
        p { "Use a token from " code { "outguard admin token create" } "." }
    };
    (
        status,
        [set_cookie(LOGIN_COOKIE, &csrf, 900)],
        page("Log in", None, body),
    )
        .into_response()
}

pub async fn form() -> Response {
    render(StatusCode::OK, None)
}

pub async fn submit(State(s): State<AppState>, parts: Parts, Form(f): Form<LoginForm>) -> Response {
    let expected = cookie(&parts, LOGIN_COOKIE);
    match (expected, f.csrf.as_deref()) {
        (Some(e), Some(p)) if same(e, p) => {}
        _ => return (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response(),
    }
    let token = match resolve(&s, f.token.trim()).await {
        Ok(t) => t,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            return render(StatusCode::UNAUTHORIZED, Some("That token is not valid."));
        }
        Err(e) => return e.into_response(),
    };
    if let Some(old) = cookie(&parts, SESSION_COOKIE)
        && let Err(e) = s.sessions.end(old).await
    {
        return ApiError::from(e).into_response();
    }
    let (sid, _) = match s.sessions.start(&token, s.relay.clock.now_ms()).await {
        Ok(started) => started,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let ip = client_ip(&parts);
    let actor = format!("token:{}", token.id);
    if let Err(e) = s
        .relay
        .store
        .audit(
            &actor,
            "ui.login",
            &token.id,
            "",
            ip.as_deref(),
            s.relay.clock.now_ms(),
        )
        .await
    {
        tracing::warn!(error = %e, "cannot audit a UI login");
    }
    // `AppendHeaders`: a plain header array would let the second Set-Cookie replace the first.
    let headers = AppendHeaders([
        set_cookie(SESSION_COOKIE, &sid, SESSION_TTL / 1000),
        set_cookie(LOGIN_COOKIE, "", 0),
    ]);
    (headers, Redirect::to("/")).into_response()
}

pub async fn logout(State(s): State<AppState>, user: UiUser, Form(f): Form<CsrfForm>) -> Response {
    if let Err(r) = user.check_csrf(f.csrf.as_deref()) {
        return r.into_response();
    }
    if let Err(e) = s.sessions.end(&user.sid).await {
        return ApiError::from(e).into_response();
    }
    ([set_cookie(SESSION_COOKIE, "", 0)], Redirect::to("/login")).into_response()
}
