//! What the bulk compliance gate asks DNS (issue 25 part 4, `crate::enforce::bulk`): DMARC and
//! SPF records, parsed by mail-auth (`Dmarc`, `Spf`), and the client's DKIM signatures verified
//! by mail-auth against their keys. On our resolver (`[dns] resolver`), each answer cached for
//! five minutes (failures for one) and at most 50,000 names, so a bulk stream costs a few
//! lookups per five minutes, not per message. DKIM keys are cached by the resolver's own cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_auth::common::cache::NoCache;
use mail_auth::dmarc::Dmarc;
use mail_auth::spf::Spf;
use mail_auth::{AuthenticatedMessage, DkimResult, Error, MessageAuthenticator, Parameters, Txt};
use outguard_policy::bulk::{ClientSignature, Lookup};
use outguard_types::config::DnsConfig;

const ANSWER_TTL: Duration = Duration::from_secs(300);
const ERROR_TTL: Duration = Duration::from_secs(60);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 50_000;

pub struct AuthDns {
    /// None when no resolver could be built (the checks then say "unknown", never fail).
    auth: Option<Arc<MessageAuthenticator>>,
    cache: Mutex<HashMap<String, (Lookup, Instant)>>,
}

fn classify<T>(r: Result<Result<T, Error>, tokio::time::error::Elapsed>) -> Lookup {
    match r {
        Ok(Ok(_)) => Lookup::Found,
        // No record, or records that are not of this kind: the domain has none.
        Ok(Err(Error::Dns(mail_auth::DnsError::RecordNotFound(_))))
        | Ok(Err(Error::Dns(mail_auth::DnsError::InvalidRecordType)))
        | Ok(Err(Error::ParseError)) => Lookup::Missing,
        Ok(Err(e)) => Lookup::Unknown(e.to_string()),
        Err(_) => Lookup::Unknown("DNS timeout".into()),
    }
}

impl AuthDns {
    pub fn new(cfg: &DnsConfig) -> AuthDns {
        let auth = match crate::fbl::trust::authenticator(cfg) {
            Ok(a) => Some(Arc::new(a)),
            Err(e) => {
                tracing::warn!(error = %e, "no resolver for the bulk compliance checks");
                None
            }
        };
        AuthDns {
            auth,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &str) -> Option<Lookup> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn remember(&self, key: String, v: &Lookup) {
        let now = Instant::now();
        let ttl = match v {
            Lookup::Unknown(_) => ERROR_TTL,
            _ => ANSWER_TTL,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (_, exp)| *exp > now);
        }
        if cache.len() < MAX_ENTRIES {
            cache.insert(key, (v.clone(), now + ttl));
        }
    }

    /// A DMARC record (`v=DMARC1`) at `_dmarc.<domain>`.
    pub async fn dmarc(&self, domain: &str) -> Lookup {
        let name = format!("_dmarc.{}.", domain.trim_end_matches('.'));
        self.txt::<Dmarc>("dmarc", name).await
    }

    /// An SPF record (`v=spf1`) at `domain`.
    pub async fn spf(&self, domain: &str) -> Lookup {
        let name = format!("{}.", domain.trim_end_matches('.'));
        self.txt::<Spf>("spf", name).await
    }

    async fn txt<T>(&self, kind: &str, name: String) -> Lookup
    where
        T: mail_auth::common::parse::TxtRecordParser
            + Into<Txt>
            + mail_auth::common::resolver::UnwrapTxtRecord,
    {
        let key = format!("{kind}:{}", name.to_ascii_lowercase());
        if let Some(v) = self.cached(&key) {
            return v;
        }
        let Some(auth) = &self.auth else {
            return Lookup::Unknown("no resolver".into());
        };
        let r = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            auth.txt_lookup::<T>(name, None::<&NoCache<Box<str>, Txt>>),
        )
        .await;
        let v = classify(r);
        self.remember(key, &v);
        v
    }

    /// The message's DKIM signatures, each verified (`verified: None` when DNS could not tell).
    pub async fn client_signatures(&self, body: &[u8]) -> Vec<ClientSignature> {
        let Some(msg) = AuthenticatedMessage::parse(body) else {
            return Vec::new();
        };
        if msg.dkim_headers.is_empty() {
            return Vec::new();
        }
        let unverified = |msg: &AuthenticatedMessage<'_>| {
            msg.dkim_headers
                .iter()
                .map(|h| &h.header)
                .map(|s| ClientSignature {
                    domain: s.d.trim_end_matches('.').to_ascii_lowercase(),
                    verified: None,
                    signed_headers: s.h.iter().map(|x| x.to_ascii_lowercase()).collect(),
                })
                .collect::<Vec<_>>()
        };
        let Some(auth) = &self.auth else {
            return unverified(&msg);
        };
        let Ok(results) =
            tokio::time::timeout(LOOKUP_TIMEOUT, auth.verify_dkim(Parameters::new(&msg))).await
        else {
            return unverified(&msg);
        };
        results
            .iter()
            .filter_map(|r| {
                let s = r.signature()?;
                let verified = match r.result() {
                    DkimResult::Pass => Some(true),
                    DkimResult::TempError(_) => None,
                    _ => Some(false),
                };
                Some(ClientSignature {
                    domain: s.d.trim_end_matches('.').to_ascii_lowercase(),
                    verified,
                    signed_headers: s.h.iter().map(|x| x.to_ascii_lowercase()).collect(),
                })
            })
            .collect()
    }
}
