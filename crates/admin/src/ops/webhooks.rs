//! Webhook subscriptions kept in the store (SPEC §3/§5, §9): a tenant role manages its own
//! tenant's (its alerts only); an operator may also make tenant-less ones (every alert). A
//! subscription may only reach a host whose every address is public (checked by the relay's
//! webhook sender before anything is stored; `[webhooks] allow_private` opens ranges). The
//! config file's hooks are listed read-only and never removed here. Each change takes effect on
//! this node before the call returns, on the others within about a second.

use outguard_policy::AlertKind;
use outguard_policy::alerts::ALERT_KINDS;
use outguard_relay::webhooks::Webhooks;
use outguard_store::{Store, StoredWebhook};
use outguard_types::api::NewWebhook;
use outguard_types::model::Millis;

use super::{Actor, OpsError};

/// Shortest secret a caller may choose (a generated one is 24 characters).
pub const MIN_SECRET: usize = 16;
const MAX_SECRET: usize = 256;
const MAX_URL: usize = 2048;
/// Ids of the config's webhooks in a list: `config-<n>` (1-based, file order).
pub const CONFIG_ID_PREFIX: &str = "config-";

/// The checked parts of a [`NewWebhook`]: kinds deduplicated in the order given, the secret
/// chosen or generated. Every failure is a message for a 422.
pub fn validate(body: &NewWebhook) -> Result<(Vec<String>, String), String> {
    let url = body.url.trim();
    if url.len() > MAX_URL {
        return Err(format!("url: longer than {MAX_URL} characters"));
    }
    outguard_types::webhook_url::WebhookUrl::parse(url).map_err(|e| format!("url: {e}"))?;
    let mut kinds: Vec<String> = Vec::new();
    for k in &body.kinds {
        let kind = AlertKind::parse(k.trim()).ok_or_else(|| {
            let known: Vec<&str> = ALERT_KINDS.iter().map(|k| k.as_str()).collect();
            format!("kinds: `{k}` is not one of {}", known.join(", "))
        })?;
        if !kinds.iter().any(|x| x == kind.as_str()) {
            kinds.push(kind.as_str().to_string());
        }
    }
    let secret = match &body.secret {
        None => outguard_store::generate_password(),
        Some(s) if s.chars().count() < MIN_SECRET => {
            return Err(format!(
                "secret: at least {MIN_SECRET} characters (omit it to have one generated)"
            ));
        }
        Some(s) if s.chars().count() > MAX_SECRET => {
            return Err(format!("secret: at most {MAX_SECRET} characters"));
        }
        Some(s) if s.chars().any(char::is_control) => {
            return Err("secret: control characters are not allowed".into());
        }
        Some(s) => s.clone(),
    };
    Ok((kinds, secret))
}

/// Subscribe; returns the stored webhook and its secret (shown this once).
pub async fn add(
    store: &Store,
    actor: &Actor,
    hooks: &Webhooks,
    body: &NewWebhook,
    now: Millis,
) -> Result<(StoredWebhook, String), OpsError> {
    actor.require_write()?;
    let asked = body.tenant.as_deref().filter(|t| !t.is_empty());
    let tenant = match (&actor.tenant, asked) {
        // Operators: a named tenant, or none for every alert.
        _ if actor.is_operator() => asked.map(str::to_string),
        (Some(own), None) => Some(own.clone()),
        (_, Some(t)) => {
            actor.require_tenant(t)?;
            Some(t.to_string())
        }
        (None, None) => return Err(OpsError::NotFound("tenant not found".into())),
    };
    let (kinds, secret) = validate(body).map_err(OpsError::Invalid)?;
    let url = body.url.trim();
    hooks
        .check_subscription(url)
        .await
        .map_err(|e| OpsError::Invalid(format!("url: {e}")))?;
    let stored = store
        .create_webhook(tenant.as_deref(), url, &secret, &kinds, &actor.name, now)
        .await?;
    let detail = format!(
        "tenant {} url {url} kinds {}",
        tenant.as_deref().unwrap_or("-"),
        if kinds.is_empty() {
            "all".to_string()
        } else {
            kinds.join(",")
        }
    );
    actor
        .audit(store, "webhook.create", &stored.id, &detail)
        .await?;
    reload(hooks).await;
    Ok((stored, secret))
}

/// Unsubscribe a stored webhook (the config file's are edited in the file).
pub async fn remove(
    store: &Store,
    actor: &Actor,
    hooks: &Webhooks,
    id: &str,
) -> Result<(), OpsError> {
    if id.starts_with(CONFIG_ID_PREFIX) && actor.is_operator() {
        return Err(OpsError::Invalid(format!(
            "webhook {id} comes from the config file ([[webhooks.hooks]]): edit the file to remove it"
        )));
    }
    let missing = || OpsError::NotFound(format!("webhook {id} not found"));
    let w = store.webhook(id).await?.ok_or_else(missing)?;
    if !actor.sees_opt(w.tenant.as_deref()) {
        return Err(missing());
    }
    actor.require_write()?;
    store.delete_webhook(id).await?;
    let detail = format!(
        "tenant {} url {}",
        w.tenant.as_deref().unwrap_or("-"),
        w.url
    );
    actor.audit(store, "webhook.delete", id, &detail).await?;
    reload(hooks).await;
    Ok(())
}

/// The change is stored: make it hold on this node now. A failed reload is only logged (the
/// poll retries within a second).
async fn reload(hooks: &Webhooks) {
    if let Err(e) = hooks.reload().await {
        tracing::warn!(error = %e, "cannot reload stored webhooks after a change");
    }
}
