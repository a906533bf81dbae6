//! Campaigns across accounts (issue 19): a compromised-account wave sends near-identical mail
//! from many accounts, each of which alone may look clean.
//!
//! Each message body gets a 64-bit simhash of its normalised text (lowercase word 3-shingles,
//! digit runs folded so per-recipient numbers do not matter) and of its links (host and path,
//! weighted). Privacy: only that hash, a hash of the sender, a hash of its tenant and one bit
//! ("called spam") are kept, for an hour; no body, no address. Near-duplicates (Hamming
//! distance ≤ [`MAX_DISTANCE`]) are found through four 16-bit bands: two hashes that close
//! share at least one band exactly (pigeonhole), so a message looks at four short timed lists,
//! capped at [`BUCKET_CAP`].
//!
//! When at least [`MIN_ACCOUNTS`] senders sent near-duplicates within the hour and one of them
//! was called spam, a message not itself called spam is raised to suspicious (`CAMPAIGN_MATCH`,
//! with the count). The operator is alerted (`campaign_detected`) when the service as a whole
//! sees 3, 10, 100, 1000 such senders (of any tenants, one called spam), so a large wave does
//! not flood the alert list: an alert restricts nobody, and the operator sees every tenant.
//!
//! # Trust (SPEC §9: one tenant must not be able to harm another)
//!
//! Whose evidence counts is decided from the message's own tenant, by [`judge`]:
//! - senders of the message's **own tenant** always count, and so does their "called spam":
//!   a wave inside one tenant (its compromised accounts) is caught from 3 of its senders;
//! - senders of **other tenants** count only when they come from at least
//!   [`MIN_OTHER_TENANTS`] different other tenants, and their "called spam" only when mail
//!   called spam came from at least [`MIN_OTHER_TENANTS`] different other tenants.
//!
//! Otherwise a tenant with three accounts could copy another tenant's newsletter, dress one
//! copy as spam, and turn every copy the victim sends into suspicious mail: routed from
//! `high-risk` and counted toward the victim's own spam thresholds, i.e. restricted for the
//! attacker's doing. With the rule an attacker needs two tenants that each got mail called
//! spam (and so each carry `ACCOUNT_RECENT_SPAM` and spam counts themselves), while a real wave
//! across the service (stolen credentials of many tenants) still reaches it quickly. Evidence
//! from other tenants is not merely limited to routing: a `CAMPAIGN_MATCH` is one verdict, and
//! a verdict that routes to `high-risk` but is not counted would be a second kind of
//! suspicious that the trace, the stats and the thresholds would have to tell apart.
//!
//! Entries written before tenants were recorded (three fields, a node of the previous release
//! during a rolling upgrade) have no known tenant and count for nobody; they are gone within
//! the hour.

use std::collections::{HashMap, HashSet};

use outguard_types::model::Millis;

use super::SignalStore;
use crate::counters::{CounterError, HOUR_MS};
use crate::restriction::Subject;

pub const MIN_ACCOUNTS: usize = 3;
/// Other tenants whose senders (and, separately, whose mail called spam) it takes before their
/// evidence counts for a message (see the module docs: trust).
pub const MIN_OTHER_TENANTS: usize = 2;
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
    /// Distinct senders of near-duplicates in the window whose evidence counts for this
    /// message ([`judge`]), this one included.
    pub senders: usize,
    /// At least one of them (this one included) was called spam, by evidence that counts.
    pub any_spam: bool,
    /// How many other tenants' senders are among `senders` (0, or at least
    /// [`MIN_OTHER_TENANTS`]).
    pub other_tenants: usize,
    /// The service's view, for the operator's alert: every sender of a near-duplicate in the
    /// window, of any tenant, this one included.
    pub all_senders: usize,
    /// The tenants of those senders.
    pub all_tenants: usize,
    /// Any of those was called spam.
    pub all_spam: bool,
}

impl Campaign {
    /// A campaign for this message, by the rule above: it is raised to suspicious.
    pub fn matched(&self) -> bool {
        self.senders >= MIN_ACCOUNTS && self.any_spam
    }

    /// The operator hears of it at these counts of the service's view (the alert restricts
    /// nobody, so it does not wait for the trust rule: the operator sees every tenant).
    pub fn alert_now(&self) -> bool {
        self.all_spam && ALERT_AT.contains(&self.all_senders)
    }
}

/// One near-duplicate in the lists: who sent it (hashes) and whether it was called spam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    pub sender: u64,
    pub tenant: u64,
    pub spam: bool,
}

/// The trust rule (module docs): what the sightings say about a message from `me`. `me` is
/// counted whatever the lists hold.
pub fn judge(me: Sighting, seen: &[Sighting]) -> Campaign {
    let mut own = HashSet::from([me.sender]);
    let mut own_spam = me.spam;
    let mut others: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut spam_tenants = HashSet::new();
    for s in seen.iter().filter(|s| s.tenant == me.tenant) {
        own.insert(s.sender);
        own_spam |= s.spam;
    }
    for s in seen.iter().filter(|s| s.tenant != me.tenant) {
        others.entry(s.tenant).or_default().insert(s.sender);
        if s.spam {
            spam_tenants.insert(s.tenant);
        }
    }
    let mut all: HashSet<u64> = own.clone();
    all.extend(others.values().flatten());
    let all_tenants = 1 + others.len();
    let all_spam = own_spam || !spam_tenants.is_empty();
    let other_tenants = if others.len() >= MIN_OTHER_TENANTS {
        own.extend(others.values().flatten());
        others.len()
    } else {
        0
    };
    Campaign {
        senders: own.len(),
        any_spam: own_spam || spam_tenants.len() >= MIN_OTHER_TENANTS,
        other_tenants,
        all_senders: all.len(),
        all_tenants,
        all_spam,
    }
}

fn sender_hash(subject: &Subject) -> u64 {
    fnv1a(super::reputation::key(subject).as_bytes())
}

/// A list member: `fingerprint:sender:spam:tenant` (hex hashes, spam `0`/`1`). The tenant is
/// last so that a node of the previous release, which reads three fields, still reads it.
fn member(fp: u64, me: Sighting) -> String {
    format!(
        "{fp:016x}:{:016x}:{}:{:016x}",
        me.sender,
        u8::from(me.spam),
        me.tenant
    )
}

/// A list member near `fp`, or None (another fingerprint, or a member without a tenant).
fn parse_near(m: &str, fp: u64) -> Option<Sighting> {
    let mut parts = m.split(':');
    let f = u64::from_str_radix(parts.next()?, 16).ok()?;
    let sender = u64::from_str_radix(parts.next()?, 16).ok()?;
    let spam = parts.next()? == "1";
    let tenant = u64::from_str_radix(parts.next()?, 16).ok()?;
    ((f ^ fp).count_ones() <= MAX_DISTANCE).then_some(Sighting {
        sender,
        tenant,
        spam,
    })
}

/// Note this message's fingerprint and look for its near-duplicates of the last hour; `tenant`
/// is the sender's tenant (the trust rule weighs other tenants' evidence, see [`judge`]).
pub async fn assess(
    store: &dyn SignalStore,
    fp: u64,
    subject: &Subject,
    tenant: &str,
    spam: bool,
    now: Millis,
) -> Result<Campaign, CounterError> {
    let me = Sighting {
        sender: sender_hash(subject),
        tenant: fnv1a(tenant.as_bytes()),
        spam,
    };
    let keys = band_keys(fp);
    let seen = store
        .near(&keys, &member(fp, me), now, WINDOW_MS, BUCKET_CAP)
        .await?;
    let seen: Vec<Sighting> = seen.iter().filter_map(|m| parse_near(m, fp)).collect();
    Ok(judge(me, &seen))
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

    fn seen(sender: u64, tenant: u64, spam: bool) -> Sighting {
        Sighting {
            sender,
            tenant,
            spam,
        }
    }

    #[test]
    fn one_other_tenant_cannot_make_a_campaign_of_your_mail() {
        // Tenant 1's three accounts sent the text, one copy called spam; tenant 2 sends it.
        let attacker = [seen(1, 1, true), seen(2, 1, false), seen(3, 1, false)];
        let victim = judge(seen(10, 2, false), &attacker);
        assert_eq!(victim.senders, 1, "{victim:?}");
        assert!(!victim.any_spam && !victim.matched());
        // The operator still hears of the four senders (the alert restricts nobody).
        assert_eq!((victim.all_senders, victim.all_tenants), (4, 2));
        assert!(victim.all_spam);
        // Even with the victim's own second copy in the lists.
        let mut lists = attacker.to_vec();
        lists.push(seen(11, 2, false));
        assert!(!judge(seen(10, 2, false), &lists).matched());
        // Nor can it lift the victim's own spam evidence to a campaign: two of the victim's
        // senders (one called spam) stay two.
        lists.push(seen(12, 2, true));
        lists.retain(|s| s.sender != 11);
        let two = judge(seen(10, 2, false), &lists);
        assert_eq!(two.senders, 2, "{two:?}");
        assert!(!two.matched());
    }

    #[test]
    fn a_wave_inside_one_tenant_is_a_campaign() {
        let c = judge(
            seen(3, 1, false),
            &[seen(1, 1, true), seen(2, 1, false), seen(9, 2, false)],
        );
        assert_eq!((c.senders, c.other_tenants), (3, 0), "{c:?}");
        assert!(c.matched());
        assert_eq!((c.all_senders, c.all_tenants), (4, 2));
        assert!(!c.alert_now(), "the alert ladder is 3, 10, 100, 1000");
    }

    #[test]
    fn other_tenants_count_from_two_and_their_spam_from_two() {
        // Senders of two other tenants count; spam from only one of them does not.
        let one_spam = [seen(1, 1, true), seen(2, 2, false)];
        let c = judge(seen(3, 3, false), &one_spam);
        assert_eq!((c.senders, c.other_tenants), (3, 2), "{c:?}");
        assert!(!c.any_spam && !c.matched());
        // Spam called in both: a wave across the service.
        let c = judge(seen(3, 3, false), &[seen(1, 1, true), seen(2, 2, true)]);
        assert!(c.matched(), "{c:?}");
        // Own spam evidence plus two other tenants' clean copies.
        let c = judge(seen(3, 3, true), &[seen(1, 1, false), seen(2, 2, false)]);
        assert!(c.matched(), "{c:?}");
        // One sender resending counts once.
        let c = judge(
            seen(3, 3, false),
            &[seen(1, 1, true), seen(1, 1, true), seen(2, 2, true)],
        );
        assert_eq!(c.senders, 3);
    }

    #[test]
    fn members_carry_the_tenant_and_old_members_count_for_nobody() {
        let me = seen(0xabc, 0xdef, true);
        let m = member(7, me);
        assert_eq!(parse_near(&m, 7), Some(me));
        assert_eq!(parse_near(&m, 7 ^ 0b111), Some(me), "3 bits apart is near");
        assert_eq!(parse_near(&m, 7 ^ 0b1111), None, "4 bits apart is not");
        // The previous release's three fields: no tenant, no evidence.
        assert_eq!(parse_near("0000000000000007:0000000000000abc:1", 7), None);
        // And that release reads ours: sender second, spam bit third.
        let parts: Vec<&str> = m.split(':').collect();
        assert_eq!((parts[1], parts[2]), ("0000000000000abc", "1"));
    }

    #[test]
    fn digits_fold() {
        assert_eq!(words("Code 12345 a1b22"), vec!["code", "0", "a0b0"]);
    }
}
