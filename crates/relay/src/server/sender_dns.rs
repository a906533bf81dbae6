//! "Does the sender's domain exist?" (SPEC §2.5: a sender domain with neither A nor MX goes to
//! the high-risk pool). Answers are cached for minutes and DNS failures for a minute, so a dead
//! resolver costs one timeout per domain, not one per message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use outguard_delivery::mx::MxResolver;

const ANSWER_TTL: Duration = Duration::from_secs(300);
const ERROR_TTL: Duration = Duration::from_secs(60);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_ENTRIES: usize = 50_000;

/// What DNS said about a sender domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainExists {
    Yes,
    No,
    /// DNS could not tell; the message is not penalised for our resolver's trouble.
    Unknown,
}

pub struct SenderDns {
    resolver: MxResolver,
    cache: Mutex<HashMap<String, (DomainExists, Instant)>>,
}

impl SenderDns {
    pub fn new(resolver: MxResolver) -> SenderDns {
        SenderDns {
            resolver,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn check(&self, domain: &str) -> DomainExists {
        let key = domain.to_ascii_lowercase();
        let now = Instant::now();
        if let Some((v, exp)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && *exp > now
        {
            return *v;
        }
        let answer = match tokio::time::timeout(
            LOOKUP_TIMEOUT,
            self.resolver.domain_has_a_or_mx(&key),
        )
        .await
        {
            Ok(Ok(true)) => DomainExists::Yes,
            Ok(Ok(false)) => DomainExists::No,
            Ok(Err(_)) | Err(_) => DomainExists::Unknown,
        };
        let ttl = if answer == DomainExists::Unknown {
            ERROR_TTL
        } else {
            ANSWER_TTL
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, (_, exp)| *exp > now);
        }
        cache.insert(key, (answer, now + ttl));
        answer
    }
}
