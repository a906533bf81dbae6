//! Cache of recently verified SMTP AUTH credentials, so repeated AUTH costs a map lookup and one
//! indexed row read instead of an argon2 verification (tens of ms on a small machine).
//!
//! - Keys are HMAC-SHA256 tags over (address, password) under a random key made per process:
//!   the cache never holds a password or anything that can be checked offline against one.
//! - Each entry remembers the PHC hash it was verified against. A hit counts only if the account
//!   still has exactly that hash in the database, so a password change or removal on *any* node
//!   invalidates it at once; the local `forget` on change just frees the memory early.
//! - Entries live [`TTL`]; the map is bounded by [`MAX_ENTRIES`] (expired entries are swept when
//!   full, and if that is not enough the map is cleared: a miss only costs one argon2 run).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use rand::Rng;

pub(crate) const TTL: Duration = Duration::from_secs(300);
pub(crate) const MAX_ENTRIES: usize = 10_000;

type Tag = [u8; 32];

struct Entry {
    address: String,
    hash: String,
    expires: Instant,
}

pub(crate) struct CredCache {
    key: [u8; 32],
    map: Mutex<HashMap<Tag, Entry>>,
}

impl CredCache {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        CredCache {
            key,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn tag(&self, address: &str, password: &str) -> Tag {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        // Length prefix so (a, bc) and (ab, c) never collide.
        mac.update(&(address.len() as u64).to_be_bytes());
        mac.update(address.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The hash this (address, password) was last verified against, if still fresh.
    pub(crate) fn get(&self, tag: &Tag, now: Instant) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(tag)
            .filter(|e| e.expires > now)
            .map(|e| e.hash.clone())
    }

    pub(crate) fn put(&self, tag: Tag, address: &str, hash: &str, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.expires > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            tag,
            Entry {
                address: address.to_string(),
                hash: hash.to_string(),
                expires: now + TTL,
            },
        );
    }

    /// Drops every entry of `address` (password changed, account removed).
    pub(crate) fn forget(&self, address: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.address != address);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_forget_and_bound() {
        let c = CredCache::new();
        let t0 = Instant::now();
        let tag = c.tag("a@x.org", "pw");
        assert_ne!(tag, c.tag("a@x.org", "pw2"));
        assert_ne!(c.tag("a@x.orgp", "w"), c.tag("a@x.org", "pw"));
        c.put(tag, "a@x.org", "H", t0);
        assert_eq!(c.get(&tag, t0).as_deref(), Some("H"));
        assert_eq!(c.get(&tag, t0 + TTL), None);
        c.forget("a@x.org");
        assert_eq!(c.get(&tag, t0), None);
        for i in 0..MAX_ENTRIES + 5 {
            c.put(c.tag(&format!("u{i}@x.org"), "p"), "u", "H", t0);
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
