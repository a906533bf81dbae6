//! The CLI's client for a running server's admin API (`--server URL --token T`, SPEC §5): one
//! JSON request per call over HTTP/1.1 (hyper's connection-level client, one connection per
//! request), `Authorization: Bearer <token>`. Paths are given as segments (encoded here), request
//! bodies as the API's own request types (`outguard_types::api`), answers decoded into the
//! record types the CLI's printers take.
//!
//! Only `http://` is spoken: the server's HTTP listener (`[listeners] http`) serves plain HTTP
//! and is meant for loopback, so there is no certificate to check. To manage a server on
//! another host, tunnel its loopback port (`ssh -L 8025:127.0.0.1:8025 host`); an `https://`
//! URL is refused as bad usage rather than sending the token in clear to an address that looks
//! encrypted.
//!
//! Failures map to the CLI's exit codes: a server that cannot be reached, does not answer in
//! time, or answers 503 is [`Unavailable`] (69); an API error body `{"error":{"code","message"}}`
//! is an [`ApiFailure`] carrying the API's message (exit 1); a bad URL or a missing token is
//! [`UsageError`] (64).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpStream;

use super::{Unavailable, UsageError};

/// Bound on connecting (a host that drops SYNs must not hang the CLI).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one whole request and response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest response body read (a queue or trace list of 1,000 rows is well under this).
const MAX_RESPONSE: usize = 32 * 1024 * 1024;

/// An error answer from the admin API (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(*.status, .message))]
pub struct ApiFailure {
    pub status: u16,
    /// The API's stable code (`not_found`, `conflict`, `invalid`, …), or empty when the answer
    /// had no error body.
    pub code: String,
    pub message: String,
}

fn describe(status: u16, message: &str) -> String {
    match status {
        401 => format!("token rejected: {message}"),
        403 => format!("forbidden: {message}"),
        _ => message.to_string(),
    }
}

/// A parsed `--server` URL and the token.
#[derive(Debug, Clone)]
pub struct Remote {
    /// As given, for messages.
    url: String,
    /// `host:port` to connect to (brackets kept for IPv6) and for the `Host` header.
    authority: String,
    /// Path prefix before `/api/v1` (empty, or e.g. `/outguard` behind a path-routing proxy).
    prefix: String,
    token: String,
}

impl Remote {
    /// `http://host[:port][/prefix]` and a token; anything else is bad usage.
    pub fn new(server: &str, token: Option<&str>) -> Result<Remote, UsageError> {
        let url = server.trim();
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                UsageError(
                "--server needs --token (or OUTGUARD_TOKEN): the admin API takes a bearer token; \
                 create one on the server host with `outguard admin token create --role operator`"
                    .into(),
            )
            })?;
        if url.len() >= 8 && url[..8].eq_ignore_ascii_case("https://") {
            return Err(UsageError(format!(
                "--server {url}: the admin API is served over plain HTTP only; use http:// \
                 (for another host, tunnel its loopback port: ssh -L 8025:127.0.0.1:8025 HOST)"
            )));
        }
        let rest = match url.get(..7) {
            Some(s) if s.eq_ignore_ascii_case("http://") => &url[7..],
            _ => {
                return Err(UsageError(format!(
                    "--server `{url}`: expected a URL like http://127.0.0.1:8025"
                )));
            }
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty()
            || authority.contains(['@', '?', '#', ' '])
            || path.contains(['?', '#'])
        {
            return Err(UsageError(format!(
                "--server `{url}`: expected http://HOST[:PORT][/PATH]"
            )));
        }
        let authority = if has_port(authority) {
            let port = authority.rsplit(':').next().unwrap_or("");
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(UsageError(format!("--server `{url}`: bad port `{port}`")));
            }
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Remote {
            url: url.trim_end_matches('/').to_string(),
            authority,
            prefix: path.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// GET the resource at `path` (segments under `/api/v1`, each percent-encoded here) with
    /// the query pairs whose value is present.
    pub async fn get(
        &self,
        path: &[&str],
        query: &[(&str, Option<String>)],
    ) -> anyhow::Result<Value> {
        let mut p = join(path);
        let pairs: Vec<String> = query
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
            .collect();
        if !pairs.is_empty() {
            p.push('?');
            p.push_str(&pairs.join("&"));
        }
        self.call(Method::GET, &p, None).await
    }

    /// GET and decode into the type the verb prints; the answer as it came is kept for `--json`.
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, Option<String>)],
        what: &str,
    ) -> anyhow::Result<(Value, T)> {
        let v = self.get(path, query).await?;
        let t = decode(&v, what)?;
        Ok((v, t))
    }

    /// POST a typed body (an `outguard_types::api` request, or none); a 204 answer is `Null`.
    pub async fn post<B: Serialize>(
        &self,
        path: &[&str],
        body: Option<&B>,
    ) -> anyhow::Result<Value> {
        let body = body.map(serde_json::to_vec).transpose()?;
        self.call(Method::POST, &join(path), body).await
    }

    /// POST without a body.
    pub async fn post_empty(&self, path: &[&str]) -> anyhow::Result<Value> {
        self.call(Method::POST, &join(path), None).await
    }

    pub async fn put<B: Serialize>(&self, path: &[&str], body: &B) -> anyhow::Result<Value> {
        self.call(Method::PUT, &join(path), Some(serde_json::to_vec(body)?))
            .await
    }

    pub async fn delete(&self, path: &[&str]) -> anyhow::Result<Value> {
        self.call(Method::DELETE, &join(path), None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        let target = format!("{}/api/v1{path}", self.prefix);
        let what = format!("{method} {}{}", self.url, &target[self.prefix.len()..]);
        let fut = self.exchange(method, &target, body);
        let (status, bytes) = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Unavailable(format!(
                    "the server at {} did not answer {what} within {}s",
                    self.url,
                    REQUEST_TIMEOUT.as_secs()
                ))
                .into());
            }
        };
        answer(status, &bytes, &what, &self.url)
    }

    /// One request on a fresh connection: the status and the whole body.
    async fn exchange(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Unavailable(format!("cannot reach the server at {}: {e}", self.url))
        };
        let stream = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect(self.authority.as_str()),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(&e).into()),
            Err(_) => return Err(unreachable(&"connection timed out").into()),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header(HOST, &self.authority)
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| UsageError(format!("cannot build the request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        let limited = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer of {}: {e}", self.url))?
            .to_bytes();
        driver.abort();
        Ok((status, bytes))
    }
}

/// Whether `host[:port]` names a port (an IPv6 literal's colons are inside brackets).
fn has_port(authority: &str) -> bool {
    match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    }
}

/// A status and body as the CLI sees them: success is the JSON (or `Null` when empty).
fn answer(status: StatusCode, body: &[u8], what: &str, url: &str) -> anyhow::Result<Value> {
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(body).map_err(|e| {
            anyhow::anyhow!("{what}: the answer is not JSON ({e}); is {url} an Outguard server?")
        });
    }
    let parsed: Option<(String, String)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str()?.to_string(),
                e.get("message")?.as_str()?.to_string(),
            ))
        });
    let (code, message) = parsed.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(200).collect();
        (String::new(), format!("{what}: HTTP {status} {text}"))
    });
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(Unavailable(format!("the server at {url} is unavailable: {message}")).into());
    }
    Err(ApiFailure {
        status: status.as_u16(),
        code,
        message,
    }
    .into())
}

/// `/seg/seg…`, each segment percent-encoded (a connector's CIDR is two segments).
fn join(path: &[&str]) -> String {
    path.iter().map(|seg| format!("/{}", encode(seg))).collect()
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved characters and `@`
/// stay; `/` in a connector's CIDR becomes `%2F`, so it stays one segment).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes an API answer into the type the table printers take.
pub fn decode<T: DeserializeOwned>(v: &Value, what: &str) -> anyhow::Result<T> {
    T::deserialize(v).map_err(|e| anyhow::anyhow!("unexpected answer for {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_tokens_and_encoding() {
        let r = Remote::new("http://127.0.0.1:8025/", Some("t")).unwrap();
        assert_eq!(
            (r.authority.as_str(), r.prefix.as_str()),
            ("127.0.0.1:8025", "")
        );
        assert_eq!(r.url, "http://127.0.0.1:8025");
        let r = Remote::new("HTTP://[::1]:9000/og", Some("t")).unwrap();
        assert_eq!(
            (r.authority.as_str(), r.prefix.as_str()),
            ("[::1]:9000", "/og")
        );
        assert_eq!(
            Remote::new("http://localhost", Some("t"))
                .unwrap()
                .authority,
            "localhost:80"
        );
        assert_eq!(
            Remote::new("http://[::1]", Some("t")).unwrap().authority,
            "[::1]:80"
        );
        for bad in [
            "127.0.0.1:8025",
            "https://127.0.0.1:8025",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://u@h:1",
            "http://h:1/x?y",
        ] {
            assert!(Remote::new(bad, Some("t")).is_err(), "{bad}");
        }
        let e = Remote::new("http://127.0.0.1:1", None).unwrap_err();
        assert!(e.0.contains("--token"), "{e}");
        assert!(Remote::new("http://127.0.0.1:1", Some("  ")).is_err());
        assert_eq!(encode("a@b.example"), "a@b.example");
        assert_eq!(encode("10.0.0.0/8"), "10.0.0.0%2F8");
        assert_eq!(encode("x y+z&é"), "x%20y%2Bz%26%C3%A9");
        assert_eq!(
            join(&["accounts", "a@b.example", "send_as", "@b.example"]),
            "/accounts/a@b.example/send_as/@b.example"
        );
    }

    #[test]
    fn answers_map_to_exit_classes() {
        let ok = answer(StatusCode::OK, br#"[{"name":"a"}]"#, "GET x", "u").unwrap();
        assert_eq!(ok[0]["name"], "a");
        assert_eq!(
            answer(StatusCode::NO_CONTENT, b"", "x", "u").unwrap(),
            Value::Null
        );
        assert!(answer(StatusCode::OK, b"<html>", "x", "u").is_err());
        let body = br#"{"error":{"code":"unauthorized","message":"unknown or revoked token"}}"#;
        let e = answer(StatusCode::UNAUTHORIZED, body, "x", "u").unwrap_err();
        let f = e.downcast_ref::<ApiFailure>().expect("api failure");
        assert_eq!((f.status, f.code.as_str()), (401, "unauthorized"));
        assert_eq!(e.to_string(), "token rejected: unknown or revoked token");
        let body = br#"{"error":{"code":"forbidden","message":"this needs an operator token"}}"#;
        let e = answer(StatusCode::FORBIDDEN, body, "x", "u").unwrap_err();
        assert_eq!(e.to_string(), "forbidden: this needs an operator token");
        let e = answer(StatusCode::NOT_FOUND, b"nope", "GET /x", "u").unwrap_err();
        assert!(
            e.to_string().contains("HTTP 404") && e.to_string().contains("nope"),
            "{e}"
        );
        let body = br#"{"error":{"code":"unavailable","message":"the records store failed"}}"#;
        let e = answer(StatusCode::SERVICE_UNAVAILABLE, body, "x", "u").unwrap_err();
        assert!(e.downcast_ref::<Unavailable>().is_some(), "{e}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unavailable() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let r = Remote::new(&format!("http://127.0.0.1:{port}"), Some("t")).unwrap();
        let e = r.get(&["tenants"], &[]).await.unwrap_err();
        assert!(e.downcast_ref::<Unavailable>().is_some(), "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
