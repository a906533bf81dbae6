//! DKIM signing at delivery (SPEC §2.7) with mail-auth: one signer per configured sender domain
//! (`[[dkim]] domain, selector, key` — PEM PKCS#8, RSA or Ed25519). The signature covers the
//! message exactly as it goes on the wire (after our headers were added and line endings made
//! CRLF), so it is computed right before sending.

use std::collections::HashMap;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use outguard_types::config::DkimConfig;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// `List-Unsubscribe` and `List-Unsubscribe-Post` are covered so that one-click unsubscribe
/// (RFC 8058 §4) holds for bulk mail we sign; a field a message lacks is signed as absent.
const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("dkim key {path}: {reason}")]
    Key { path: String, reason: String },
}

enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// Signers by (lowercased) domain.
#[derive(Default)]
pub struct DkimSigners {
    by_domain: HashMap<String, Signer>,
}

fn load_key(cfg: &DkimConfig) -> Result<Signer, DkimError> {
    let path = cfg.key.display().to_string();
    let bad = |reason: String| DkimError::Key {
        path: path.clone(),
        reason,
    };
    let pem = std::fs::read(&cfg.key).map_err(|e| bad(e.to_string()))?;
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| bad(e.to_string()))?;
    let secret = der.secret_der().to_vec();
    let signer = if let Ok(key) = Ed25519Key::from_pkcs8_maybe_unchecked_der(&secret) {
        Signer::Ed25519(
            DkimSigner::from_key(key)
                .domain(&cfg.domain)
                .selector(&cfg.selector)
                .headers(SIGNED_HEADERS),
        )
    } else {
        let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad(e.to_string()))?;
        Signer::Rsa(
            DkimSigner::from_key(key)
                .domain(&cfg.domain)
                .selector(&cfg.selector)
                .headers(SIGNED_HEADERS),
        )
    };
    Ok(signer)
}

/// Whether `serve` will be able to sign with this key: what is wrong with it otherwise
/// (`check-config` reports it under `dkim[i].key`).
pub fn check_key(cfg: &DkimConfig) -> Result<(), String> {
    match load_key(cfg) {
        Ok(_) => Ok(()),
        Err(DkimError::Key { reason, .. }) => Err(reason),
    }
}

impl DkimSigners {
    pub fn load(cfgs: &[DkimConfig]) -> Result<DkimSigners, DkimError> {
        let mut by_domain = HashMap::new();
        for cfg in cfgs {
            by_domain.insert(cfg.domain.to_ascii_lowercase(), load_key(cfg)?);
        }
        Ok(DkimSigners { by_domain })
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The `DKIM-Signature: …\r\n` header for `message` (CRLF-normalised, not dot-stuffed) when
    /// the sender domain has a key. A signing failure sends the message unsigned (logged).
    pub fn sign(&self, sender_domain: &str, message: &[u8]) -> Option<Vec<u8>> {
        let signer = self.by_domain.get(&sender_domain.to_ascii_lowercase())?;
        let sig = match signer {
            Signer::Rsa(s) => s.sign(message).map(|s| s.to_header()),
            Signer::Ed25519(s) => s.sign(message).map(|s| s.to_header()),
        };
        match sig {
            Ok(h) => Some(h.into_bytes()),
            Err(e) => {
                tracing::warn!(domain = sender_domain, error = %e, "DKIM signing failed; sending unsigned");
                None
            }
        }
    }
}
