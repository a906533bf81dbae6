//! A complained-about message is spam in its recipient's eyes: it trains the tenant's spam
//! overlay (`outguard_spam::Overlay`, kept as the blob `spam-overlay:<tenant>`). Only full
//! originals train (a headers-only report has no body to learn from). Read-modify-write without
//! a lock: two reports about one tenant at the same instant may lose one lesson, never corrupt.

use crate::server::Relay;

pub async fn learn_spam(relay: &Relay, tenant: &str, original: &str) {
    let key = format!("spam-overlay:{tenant}");
    let mut overlay = match relay.store.get_blob(&key).await {
        Ok(Some(bytes)) => outguard_spam::Overlay::from_bytes(&bytes).unwrap_or_else(|e| {
            tracing::warn!(%tenant, error = %e, "spam overlay unreadable; starting a new one");
            outguard_spam::Overlay::new()
        }),
        Ok(None) => outguard_spam::Overlay::new(),
        Err(e) => {
            tracing::warn!(%tenant, error = %e, "cannot read the spam overlay");
            return;
        }
    };
    // Stored even when the weights did not move: the lesson counts changed.
    overlay.learn(&relay.scanner, original.as_bytes(), true);
    if let Err(e) = relay.store.put_blob(&key, &overlay.to_bytes()).await {
        tracing::warn!(%tenant, error = %e, "cannot store the spam overlay");
    }
}
