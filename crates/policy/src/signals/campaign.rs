//! Campaigns across accounts (issue 19): a compromised-account wave sends near-identical mail
//! from many accounts, each of which alone may look clean.
//!
//! Each message body gets a 64-bit simhash of its normalised text (lowercase word 3-shingles,
//! digit runs folded so per-recipient numbers do not matter) and of its links (host and path,
//! weighted). Privacy: only that hash, a hash of the sender and one bit ("called spam") are
//! kept, for an hour; no body, no address. Near-duplicates (Hamming distance ≤ [`MAX_DISTANCE`])
//! are found through four 16-bit bands: two hashes that close share at least one band exactly
//! (pigeonhole), so a message looks at four short timed lists, capped at [`BUCKET_CAP`].
//!
//! When at least [`MIN_ACCOUNTS`] senders (any tenants) sent near-duplicates within the hour and
//! one of them was called spam, a message not itself called spam is raised to suspicious
//! (`CAMPAIGN_MATCH`, with the count) and the operator is alerted (`campaign_detected`, at
//! 3, 10, 100, 1000 senders so a large wave does not flood the alert list).

use std::collections::HashSet;

use outguard_types::model::Millis;

use super::SignalStore;
use crate::counters::{CounterError, HOUR_MS};
use crate::restriction::Subject;

pub const MIN_ACCOUNTS: usize = 3;
pub const WINDOW_MS: i64 = HOUR_MS;
pub const MAX_DISTANCE: u32 = 3;
pub const BUCKET_CAP: usize = 1_000;
/// Bodies with fewer word shingles than this are too short to fingerprint ("thanks!").
pub const MIN_SHINGLES: usize = 8;
/// Sender counts at which the operator is alerted.
pub const ALERT_AT: [usize; 4] = [3, 10, 100, 1000];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: stable across builds and nodes (the fingerprints are shared in Redis).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_more(FNV_OFFSET, bytes)
}

/// FNV-1a continued over `bytes` from the state `h` (hashing parts in turn = hashing their
/// concatenation).
fn fnv1a_more(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `fnv1a` of the shingle `a b c` (its words joined by single spaces), without building it.
fn shingle_hash(s: &[String]) -> u64 {
    let mut h = FNV_OFFSET;
    for (i, w) in s.iter().enumerate() {
        if i > 0 {
            h = fnv1a_more(h, b" ");
        }
        h = fnv1a_more(h, w.as_bytes());
    }
    h
}

/// Words of the text, lowercase, digit runs folded to `0`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut out = String::with_capacity(w.len());
            let mut digit = false;
            for c in w.chars().flat_map(char::to_lowercase) {
                if c.is_numeric() {
                    if !digit {
                        out.push('0');
                    }
                    digit = true;
                } else {
                    out.push(c);
                    digit = false;
                }
            }
            out
        })
        .collect()
}

/// `host/path` of each http(s) link in `text` (query and fragment dropped, lowercase).
pub fn links(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("http") {
        rest = &rest[i..];
        let after = rest
            .strip_prefix("https://")
            .or_else(|| rest.strip_prefix("http://"));
        let Some(after) = after else {
            rest = &rest[4..];
            continue;
        };
        let end = after
            .find(|c: char| c.is_whitespace() || "\"'<>()?#".contains(c))
            .unwrap_or(after.len());
        if end > 0 {
            out.push(after[..end].trim_end_matches(['.', ',', '/']).to_string());
        }
        rest = &after[end..];
    }
    out
}

/// The body's simhash, or None when it is too short to say anything.
pub fn fingerprint(text: &str) -> Option<u64> {
    let w = words(text);
    if w.len() < MIN_SHINGLES + 2 {
        return None;
    }
    let mut acc = [0i64; 64];
    let mut add = |h: u64, weight: i64| {
        for (bit, a) in acc.iter_mut().enumerate() {
            if h >> bit & 1 == 1 {
                *a += weight;
            } else {
                *a -= weight;
            }
        }
    };
    for s in w.windows(3) {
        add(shingle_hash(s), 1);
    }
    for l in links(text) {
        add(fnv1a(l.as_bytes()), 3);
    }
    Some(
        acc.iter()
            .enumerate()
            .filter(|(_, a)| **a > 0)
            .fold(0u64, |h, (bit, _)| h | 1 << bit),
    )
}

/// The four band keys of a fingerprint.
pub fn band_keys(fp: u64) -> Vec<String> {
    (0..4)
        .map(|i| format!("camp:{i}:{:04x}", (fp >> (16 * i)) & 0xffff))
        .collect()
}

/// What the campaign lists say about this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Campaign {
    /// Distinct senders of near-duplicates in the window, this one included.
    pub senders: usize,
    /// At least one of them (this one included) was called spam.
    pub any_spam: bool,
}

impl Campaign {
    /// A campaign by the rule above.
    pub fn matched(&self) -> bool {
        self.senders >= MIN_ACCOUNTS && self.any_spam
    }

    /// The operator hears of it at these counts.
    pub fn alert_now(&self) -> bool {
        self.matched() && ALERT_AT.contains(&self.senders)
    }
}

fn sender_hash(subject: &Subject) -> u64 {
    fnv1a(super::reputation::key(subject).as_bytes())
}

/// Note this message's fingerprint and look for its near-duplicates of the last hour.
pub async fn assess(
    store: &dyn SignalStore,
    fp: u64,
    subject: &Subject,
    spam: bool,
    now: Millis,
) -> Result<Campaign, CounterError> {
    let me = sender_hash(subject);
    let member = format!("{fp:016x}:{me:016x}:{}", u8::from(spam));
    let keys = band_keys(fp);
    let seen = store
        .near(&keys, &member, now, WINDOW_MS, BUCKET_CAP)
        .await?;
    let mut senders = HashSet::from([me]);
    let mut any_spam = spam;
    for m in seen {
        let mut parts = m.split(':');
        let (Some(f), Some(s), Some(b)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(f), Ok(s)) = (u64::from_str_radix(f, 16), u64::from_str_radix(s, 16)) else {
            continue;
        };
        if (f ^ fp).count_ones() <= MAX_DISTANCE {
            senders.insert(s);
            any_spam |= b == "1";
        }
    }
    Ok(Campaign {
        senders: senders.len(),
        any_spam,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHISH: &str = "Dear customer, your mailbox storage is full and incoming messages \
        are suspended. Verify your account within 24 hours to avoid deactivation: \
        https://mail-verify.example/login?u=1234 Thank you, the IT help desk team.";
    /// `fingerprint(PHISH)` as computed by the shingle-joining code this replaced.
    const PHISH_FP: u64 = 0x25f6_0281_a510_7b80;

    #[test]
    fn a_shingle_hashes_as_its_joined_text() {
        let s = ["dear".to_string(), "customer".into(), "0".into()];
        assert_eq!(shingle_hash(&s), fnv1a(b"dear customer 0"));
        assert_eq!(fnv1a(b""), FNV_OFFSET);
    }

    #[test]
    fn fingerprints_stay_what_they_were() {
        // The hashes are shared between nodes (Redis) and kept for an hour across a rolling
        // upgrade: this value was computed before shingles stopped being joined into Strings.
        assert_eq!(fingerprint(PHISH), Some(PHISH_FP));
    }

    #[test]
    fn near_duplicates_are_close_and_other_mail_is_not() {
        let a = fingerprint(PHISH).unwrap();
        let b = fingerprint(
            &PHISH
                .replace("1234", "98765")
                .replace("Dear customer", "Dear user"),
        )
        .unwrap();
        let c = fingerprint(
            "Hi team, the minutes of Tuesday's meeting are attached. We agreed to move the \
             release to next week and to review the budget on Friday afternoon.",
        )
        .unwrap();
        assert!(
            (a ^ b).count_ones() <= MAX_DISTANCE,
            "{}",
            (a ^ b).count_ones()
        );
        assert!((a ^ c).count_ones() > 10);
        // A near-duplicate shares at least one band with the original.
        let (ka, kb) = (band_keys(a), band_keys(b));
        assert!(ka.iter().zip(&kb).any(|(x, y)| x == y));
    }

    #[test]
    fn short_bodies_have_no_fingerprint() {
        assert_eq!(fingerprint("thanks, see you tomorrow"), None);
    }

    #[test]
    fn links_keep_host_and_path() {
        assert_eq!(
            links("go to HTTPS://Evil.example/a/b?x=1 now, or http://x.example."),
            vec!["evil.example/a/b", "x.example"]
        );
    }

    #[test]
    fn digits_fold() {
        assert_eq!(words("Code 12345 a1b22"), vec!["code", "0", "a0b0"]);
    }
}
