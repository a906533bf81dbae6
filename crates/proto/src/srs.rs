//! Sender Rewriting Scheme (SPEC §2.5, §9): forwarded mail leaves with an envelope sender in our
//! own `[srs] domain`, so SPF checks our IPs and bounces come back to us, and a bounce to such an
//! address is reversed to the original sender. Pure: no I/O, the time is a parameter.
//!
//! The address forms are the Shevek/libsrs2 "guarded" scheme (what postsrsd and Exim speak):
//!
//! - `SRS0=HHHH=TT=domain=local@srs.domain`: `TT` is the day number mod 1024 in two base32
//!   characters; `HHHH` the first 4 base64 characters of HMAC-SHA256(secret, lc(TT) lc(domain)
//!   lc(local)). libsrs2 uses HMAC-SHA1; only the minting host verifies its own hashes, so the
//!   choice of MAC is ours.
//! - `SRS1=HHHH=srs0host==HHHH=TT=domain=local@srs.domain` when the sender already was another
//!   forwarder's SRS0 address: we keep its SRS0 part and guard only the hop to that forwarder
//!   (hash over lc(srs0host) lc(`=HHHH=TT=domain=local`)); reversing gives back the SRS0 address
//!   at `srs0host`, whose owner checks its own timestamp. A sender that is an SRS1 address keeps
//!   its first hop and gets our hash.
//!
//! The hash is compared case-insensitively (some MTAs fold local parts) and in constant time.
//! Inputs are lowercased before hashing for the same reason; the address returned keeps the case
//! it arrived in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};
use subtle::ConstantTimeEq as _;

/// Hash characters in an address (24 bits of HMAC, as in libsrs2's default).
pub const HASH_LEN: usize = 4;
/// Days a timestamp can express: it is kept mod 1024 in two base32 characters.
pub const TIMESTAMP_SLOTS: i64 = 1024;
/// Default `[srs] max_age`: bounces may come back up to three weeks after forwarding.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 21;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const DAY_SECS: i64 = 86_400;

/// Why an address could not be rewritten or reversed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    #[error("malformed SRS address: {0}")]
    Malformed(&'static str),
    #[error("SRS hash does not match")]
    BadHash,
    #[error("SRS address expired ({age_days} days old, at most {max_age_days})")]
    Expired { age_days: u32, max_age_days: u32 },
}

/// The SRS rewriter of one service: its secret, its domain and how long its addresses live.
#[derive(Clone)]
pub struct Srs {
    secret: Vec<u8>,
    domain: String,
    max_age_days: u32,
}

impl std::fmt::Debug for Srs {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srs")
            .field("domain", &self.domain)
            .field("max_age_days", &self.max_age_days)
            .finish_non_exhaustive()
    }
}

/// What a tag (`SRS0`/`SRS1`) is followed by: libsrs2 accepts `=`, `+` and `-`.
fn strip_tag<'a>(local: &'a str, tag: &str) -> Option<&'a str> {
    let head = local.get(..tag.len())?;
    let rest = &local[tag.len()..];
    (head.eq_ignore_ascii_case(tag) && rest.starts_with(['=', '+', '-'])).then_some(rest)
}

fn split_address(addr: &str) -> Result<(&str, &str), SrsError> {
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or(SrsError::Malformed("no @ in the address"))?;
    if local.is_empty() || domain.is_empty() {
        return Err(SrsError::Malformed("empty local part or domain"));
    }
    Ok((local, domain))
}

/// Day number mod 1024 as two base32 characters.
pub fn timestamp(now_unix_secs: i64) -> String {
    let t = now_unix_secs
        .div_euclid(DAY_SECS)
        .rem_euclid(TIMESTAMP_SLOTS) as usize;
    let chars = [BASE32[t >> 5], BASE32[t & 31]];
    String::from_utf8_lossy(&chars).into_owned()
}

fn decode_timestamp(tt: &str) -> Option<i64> {
    let b = tt.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let val = |c: u8| {
        BASE32
            .iter()
            .position(|x| *x == c.to_ascii_uppercase())
            .map(|p| p as i64)
    };
    Some(val(b[0])? << 5 | val(b[1])?)
}

impl Srs {
    /// `max_age_days` is clamped to 1–1023: a timestamp cannot tell older days apart.
    pub fn new(secret: &[u8], domain: &str, max_age_days: u32) -> Srs {
        Srs {
            secret: secret.to_vec(),
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            max_age_days: max_age_days.clamp(1, (TIMESTAMP_SLOTS - 1) as u32),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether `addr` is in our SRS domain (then RCPT must be able to reverse it).
    pub fn is_ours(&self, addr: &str) -> bool {
        addr.rsplit_once('@')
            .is_some_and(|(_, d)| d.trim_end_matches('.').eq_ignore_ascii_case(&self.domain))
    }

    fn hash(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret) else {
            return String::new(); // HMAC takes keys of any length; not reached.
        };
        for p in parts {
            mac.update(p.to_ascii_lowercase().as_bytes());
        }
        let mut h = STANDARD.encode(mac.finalize().into_bytes());
        h.truncate(HASH_LEN);
        h
    }

    fn verify(&self, given: &str, parts: &[&str]) -> Result<(), SrsError> {
        let want = self.hash(parts).to_ascii_lowercase();
        let given = given.to_ascii_lowercase();
        if given.len() == want.len() && bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
            Ok(())
        } else {
            Err(SrsError::BadHash)
        }
    }

    /// The envelope sender forwarded mail leaves with. An address already in our SRS domain is
    /// returned unchanged (forwarding our own forward must not stack rewrites).
    pub fn forward(&self, sender: &str, now_unix_secs: i64) -> Result<String, SrsError> {
        let (local, host) = split_address(sender)?;
        if self.is_ours(sender) {
            return Ok(sender.to_string());
        }
        if host.contains(['=', '"', ' ']) || local.contains(['"', ' ', '\t']) {
            return Err(SrsError::Malformed(
                "quoted local part or odd domain cannot be rewritten",
            ));
        }
        let ours = &self.domain;
        if let Some(rest) = strip_tag(local, "SRS1") {
            // Re-forwarding another forwarder's SRS1: keep its first hop, guard it with our hash.
            let mut it = rest[1..].splitn(3, '=');
            let (Some(_), Some(srs_host), Some(srs_user)) = (it.next(), it.next(), it.next())
            else {
                return Err(SrsError::Malformed(
                    "SRS1 address needs hash, host and user",
                ));
            };
            if srs_host.is_empty() {
                return Err(SrsError::Malformed("SRS1 address has no host"));
            }
            let h = self.hash(&[srs_host, srs_user]);
            return Ok(format!("SRS1={h}={srs_host}={srs_user}@{ours}"));
        }
        if let Some(rest) = strip_tag(local, "SRS0") {
            // `rest` keeps its separator: `=HHHH=TT=domain=local` → `SRS1=…=host==HHHH=…`.
            let h = self.hash(&[host, rest]);
            return Ok(format!("SRS1={h}={host}={rest}@{ours}"));
        }
        let tt = timestamp(now_unix_secs);
        let h = self.hash(&[&tt, host, local]);
        Ok(format!("SRS0={h}={tt}={host}={local}@{ours}"))
    }

    /// The address a bounce to our SRS address `addr` goes back to: checked hash, then age.
    pub fn reverse(&self, addr: &str, now_unix_secs: i64) -> Result<String, SrsError> {
        let (local, _) = split_address(addr)?;
        if !self.is_ours(addr) {
            return Err(SrsError::Malformed("not in the SRS domain"));
        }
        if let Some(rest) = strip_tag(local, "SRS0") {
            let mut it = rest[1..].splitn(4, '=');
            let (Some(hash), Some(tt), Some(host), Some(user)) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(SrsError::Malformed(
                    "SRS0 address needs hash, time, host and user",
                ));
            };
            if host.is_empty() || user.is_empty() {
                return Err(SrsError::Malformed(
                    "SRS0 address has an empty host or user",
                ));
            }
            self.verify(hash, &[tt, host, user])?;
            self.check_age(tt, now_unix_secs)?;
            return Ok(format!("{user}@{host}"));
        }
        if let Some(rest) = strip_tag(local, "SRS1") {
            let mut it = rest[1..].splitn(3, '=');
            let (Some(hash), Some(host), Some(user)) = (it.next(), it.next(), it.next()) else {
                return Err(SrsError::Malformed(
                    "SRS1 address needs hash, host and user",
                ));
            };
            if host.is_empty() || user.is_empty() {
                return Err(SrsError::Malformed(
                    "SRS1 address has an empty host or user",
                ));
            }
            self.verify(hash, &[host, user])?;
            return Ok(format!("SRS0{user}@{host}"));
        }
        Err(SrsError::Malformed("local part is not SRS0 or SRS1"))
    }

    fn check_age(&self, tt: &str, now_unix_secs: i64) -> Result<(), SrsError> {
        let then = decode_timestamp(tt).ok_or(SrsError::Malformed("bad timestamp"))?;
        let today = now_unix_secs
            .div_euclid(DAY_SECS)
            .rem_euclid(TIMESTAMP_SLOTS);
        // A timestamp from the future (beyond clock skew) wraps to an old one: refused as expired.
        let age = (today - then).rem_euclid(TIMESTAMP_SLOTS) as u32;
        if age > self.max_age_days {
            return Err(SrsError::Expired {
                age_days: age,
                max_age_days: self.max_age_days,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-test-secret";
    /// 2026-12-07 12:00 UTC.
    const NOW: i64 = 1_796_644_800;
    const DAY: i64 = DAY_SECS;

    fn srs() -> Srs {
        Srs::new(SECRET, "srs.outguard.test", DEFAULT_MAX_AGE_DAYS)
    }

    #[test]
    fn timestamp_vectors() {
        for (day, want) in [
            (0, "AA"),
            (1, "AB"),
            (31, "A7"),
            (32, "BA"),
            (33, "BB"),
            (1023, "77"),
            (1024, "AA"),
            (1025, "AB"),
        ] {
            assert_eq!(timestamp(day * DAY + 3600), want, "day {day}");
            assert_eq!(decode_timestamp(want), Some(day % 1024));
            assert_eq!(
                decode_timestamp(&want.to_ascii_lowercase()),
                Some(day % 1024)
            );
        }
        assert_eq!(decode_timestamp("A"), None);
        assert_eq!(decode_timestamp("A1"), None);
    }

    #[test]
    fn golden_forward_and_round_trip() {
        let s = srs();
        let fwd = s.forward("Alice@Orig.Example", NOW).expect("forward");
        // Pinned (checked with Python's hmac): a change of MAC, encoding or field order breaks every address in flight.
        assert_eq!(fwd, "SRS0=M6EY=J2=Orig.Example=Alice@srs.outguard.test");
        let mut parts = fwd.split('=');
        assert_eq!(parts.next(), Some("SRS0"));
        assert_eq!(parts.next().map(str::len), Some(HASH_LEN));
        assert_eq!(parts.next(), Some(timestamp(NOW).as_str()));
        assert_eq!(s.reverse(&fwd, NOW), Ok("Alice@Orig.Example".into()));
        assert_eq!(
            s.reverse(&fwd, NOW + 3 * DAY),
            Ok("Alice@Orig.Example".into())
        );
    }

    #[test]
    fn local_parts_with_separators_survive() {
        let s = srs();
        for addr in [
            "a=b+c@orig.example",
            "list+bounces=x=y@orig.example",
            "=lead@orig.example",
            "trail=@orig.example",
            "xsrs0=not-a-tag@orig.example",
        ] {
            let fwd = s.forward(addr, NOW).expect("forward");
            assert!(fwd.starts_with("SRS0="), "{fwd}");
            assert!(fwd.ends_with("@srs.outguard.test"), "{fwd}");
            assert_eq!(s.reverse(&fwd, NOW + DAY), Ok(addr.to_string()), "{fwd}");
        }
    }

    #[test]
    fn forged_hash_is_refused() {
        let s = srs();
        let fwd = s.forward("alice@orig.example", NOW).expect("forward");
        let (_, rest) = fwd.split_at(5 + HASH_LEN);
        for forged in ["AAAA", "zzzz", "AAA", "AAAAA", ""] {
            let addr = format!("SRS0={forged}{rest}");
            assert_eq!(s.reverse(&addr, NOW), Err(SrsError::BadHash), "{addr}");
        }
        // The right hash over another user or host is refused: the hash covers every field.
        let other_user = fwd.replace("=alice@", "=mallory@");
        assert_eq!(s.reverse(&other_user, NOW), Err(SrsError::BadHash));
        let other_host = fwd.replace("=orig.example=", "=evil.example=");
        assert_eq!(s.reverse(&other_host, NOW), Err(SrsError::BadHash));
        // Another service's secret does not verify ours.
        let theirs = Srs::new(b"another-secret-of-16+", "srs.outguard.test", 21);
        assert_eq!(theirs.reverse(&fwd, NOW), Err(SrsError::BadHash));
    }

    #[test]
    fn hash_and_address_case_folded() {
        let s = srs();
        let fwd = s.forward("alice@orig.example", NOW).expect("forward");
        let hash = &fwd[5..5 + HASH_LEN];
        for h in [hash.to_ascii_lowercase(), hash.to_ascii_uppercase()] {
            let addr = fwd.replacen(hash, &h, 1);
            assert_eq!(
                s.reverse(&addr, NOW),
                Ok("alice@orig.example".into()),
                "{addr}"
            );
        }
        // An MTA that folds the whole address: still ours, still verified.
        let folded = fwd.to_ascii_lowercase();
        assert_eq!(s.reverse(&folded, NOW), Ok("alice@orig.example".into()));
        let upper = fwd.to_ascii_uppercase();
        assert_eq!(s.reverse(&upper, NOW), Ok("ALICE@ORIG.EXAMPLE".into()));
    }

    #[test]
    fn expired_and_future_timestamps_are_refused() {
        let s = srs();
        let fwd = s.forward("alice@orig.example", NOW).expect("forward");
        assert!(s.reverse(&fwd, NOW + 21 * DAY).is_ok());
        assert_eq!(
            s.reverse(&fwd, NOW + 22 * DAY),
            Err(SrsError::Expired {
                age_days: 22,
                max_age_days: 21
            })
        );
        // Two days in the future wraps to 1022 days old.
        assert!(matches!(
            s.reverse(&fwd, NOW - 2 * DAY),
            Err(SrsError::Expired { age_days: 1022, .. })
        ));
        // A short max_age; and the day counter's wrap at 1024 is not an expiry.
        let short = Srs::new(SECRET, "srs.outguard.test", 2);
        assert!(matches!(
            short.reverse(&fwd, NOW + 3 * DAY),
            Err(SrsError::Expired { age_days: 3, .. })
        ));
        let last_slot = 1023 * DAY + 10;
        let wrapped = s.forward("bob@orig.example", last_slot).expect("forward");
        assert!(wrapped.contains("=77="), "{wrapped}");
        assert_eq!(
            s.reverse(&wrapped, last_slot + 2 * DAY),
            Ok("bob@orig.example".into())
        );
        // Forged hash and expired: the hash is checked first.
        let forged = format!("SRS0=AAAA{}", &fwd[5 + HASH_LEN..]);
        assert_eq!(s.reverse(&forged, NOW + 30 * DAY), Err(SrsError::BadHash));
    }

    #[test]
    fn malformed_addresses() {
        let s = srs();
        let bad_tt = format!(
            "SRS0={}=!!=orig.example=alice@srs.outguard.test",
            s.hash(&["!!", "orig.example", "alice"])
        );
        for addr in [
            "alice@srs.outguard.test",
            "postmaster@srs.outguard.test",
            "SRS0=abcd@srs.outguard.test",
            "SRS0=abcd=AA=orig.example@srs.outguard.test",
            "SRS0=abcd=AA==alice@srs.outguard.test",
            "SRS0=abcd=AA=orig.example=@srs.outguard.test",
            "SRS0@srs.outguard.test",
            "SRS0xabcd=AA=h=u@srs.outguard.test",
            "SRS1=abcd@srs.outguard.test",
            "SRS1=abcd==u@srs.outguard.test",
            "SRS0=abcd=AA=orig.example=alice@elsewhere.example",
            "no-at-sign",
            "@srs.outguard.test",
            bad_tt.as_str(),
        ] {
            assert!(
                matches!(s.reverse(addr, NOW), Err(SrsError::Malformed(_))),
                "{addr}: {:?}",
                s.reverse(addr, NOW)
            );
        }
        for sender in [
            "no-at-sign",
            "\"a b\"@orig.example",
            "x@bad=domain",
            "@orig.example",
        ] {
            assert!(
                matches!(s.forward(sender, NOW), Err(SrsError::Malformed(_))),
                "{sender}"
            );
        }
    }

    #[test]
    fn srs1_for_re_forwarded_srs0() {
        let s = srs();
        let theirs = "SRS0=XyZ1=AB=orig.example=bob@fwd.example";
        let fwd = s.forward(theirs, NOW).expect("forward");
        let (local, domain) = fwd.rsplit_once('@').expect("@");
        assert_eq!(domain, "srs.outguard.test");
        assert!(local.starts_with("SRS1="), "{fwd}");
        assert!(
            local.ends_with("=fwd.example==XyZ1=AB=orig.example=bob"),
            "{fwd}"
        );
        // Reversed to the first forwarder's own SRS0 address: it checks its own hash and age.
        assert_eq!(s.reverse(&fwd, NOW + 500 * DAY), Ok(theirs.to_string()));
        let forged = format!("SRS1=AAAA{}", &local[5 + HASH_LEN..]) + "@srs.outguard.test";
        assert_eq!(s.reverse(&forged, NOW), Err(SrsError::BadHash));
        // Re-forwarding an SRS1 address keeps its first hop and takes our hash.
        let srs1 = "SRS1=Qq9z=fwd.example==XyZ1=AB=orig.example=bob@fwd2.example";
        let fwd2 = s.forward(srs1, NOW).expect("forward");
        assert!(fwd2.ends_with("=fwd.example==XyZ1=AB=orig.example=bob@srs.outguard.test"));
        assert_eq!(s.reverse(&fwd2, NOW), Ok(theirs.to_string()));
        // `+` after the tag (libsrs2 accepts `=`, `+`, `-`) is kept.
        let plus = s
            .forward("SRS0+XyZ1=AB=orig.example=bob@fwd.example", NOW)
            .expect("fwd");
        assert_eq!(
            s.reverse(&plus, NOW),
            Ok("SRS0+XyZ1=AB=orig.example=bob@fwd.example".into())
        );
    }

    #[test]
    fn our_own_address_is_not_rewritten_again() {
        let s = srs();
        let fwd = s.forward("alice@orig.example", NOW).expect("forward");
        assert_eq!(s.forward(&fwd, NOW), Ok(fwd.clone()));
        assert!(s.is_ours(&fwd) && s.is_ours("x@SRS.Outguard.Test."));
        assert!(!s.is_ours("x@outguard.test"));
        assert!(!format!("{s:?}").contains("test-secret"));
    }
}
