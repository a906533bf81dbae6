//! The listing state of one pool IP across DNSBL zones (SPEC §4), as a pure step function
//! (STYLE rule 8: tested as vectors). An IP becomes *listed* the first time any zone lists it;
//! it is *clear* again after `clear_checks` rounds in a row in which no zone listed it, every
//! zone that had listed it answered clean, and at least one zone answered clean. Errors and
//! unknown answers change nothing: a zone that refuses us (127.255.255.254) or times out never
//! lists nor clears an IP. The queries, the store and the alerts are the relay's
//! (`outguard_relay::dnsbl`); it reduces each zone's answer to a [`ZoneAnswer`].

use std::collections::BTreeMap;

/// What one zone said about an IP in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneAnswer {
    /// A listing code (the first one) and its meaning and TXT.
    Listed {
        code: Option<String>,
        reason: Option<String>,
    },
    Clean,
    /// An error code, a timeout, SERVFAIL: no information.
    Inconclusive,
}

/// What one zone's listing said when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub code: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpTrack {
    /// The IP is considered listed (it is drained if it is a regular IP).
    pub listed: bool,
    /// Zones whose latest informative answer was a listing.
    pub zones: BTreeMap<String, Listing>,
    /// Clean rounds in a row while `listed`.
    pub clean_streak: u32,
    /// We took it out of rotation (and must put it back).
    pub drained: bool,
}

/// What a round changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `zone` lists the IP and did not before (raise `ip_listed`).
    Listed { zone: String, listing: Listing },
    /// The IP is clear again (raise `ip_delisted`, return it to rotation).
    Delisted,
}

impl IpTrack {
    /// Apply one round of answers (zone name, outcome).
    pub fn observe(&mut self, round: &[(String, ZoneAnswer)], clear_checks: u32) -> Vec<Change> {
        let mut changes = Vec::new();
        let (mut any_listed, mut any_clean) = (false, false);
        for (zone, outcome) in round {
            match outcome {
                ZoneAnswer::Listed { code, reason } => {
                    any_listed = true;
                    let listing = Listing {
                        code: code.clone(),
                        reason: reason.clone(),
                    };
                    if self.zones.insert(zone.clone(), listing.clone()).is_none() {
                        changes.push(Change::Listed {
                            zone: zone.clone(),
                            listing,
                        });
                    }
                }
                ZoneAnswer::Clean => {
                    any_clean = true;
                    self.zones.remove(zone);
                }
                ZoneAnswer::Inconclusive => {}
            }
        }
        if any_listed {
            self.listed = true;
            self.clean_streak = 0;
        } else if self.listed && any_clean && self.zones.is_empty() {
            self.clean_streak += 1;
            if self.clean_streak >= clear_checks.max(1) {
                self.listed = false;
                self.clean_streak = 0;
                changes.push(Change::Delisted);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> ZoneAnswer {
        ZoneAnswer::Listed {
            code: Some("127.0.0.2".into()),
            reason: Some("SBL: see x".into()),
        }
    }
    fn err() -> ZoneAnswer {
        ZoneAnswer::Inconclusive
    }
    fn unknown() -> ZoneAnswer {
        ZoneAnswer::Inconclusive
    }
    fn round(a: ZoneAnswer, b: ZoneAnswer) -> Vec<(String, ZoneAnswer)> {
        vec![("a.test".into(), a), ("b.test".into(), b)]
    }

    #[test]
    fn listing_and_clearing() {
        let mut t = IpTrack::default();
        assert!(t.observe(&round(ZoneAnswer::Clean, err()), 2).is_empty());
        let c = t.observe(&round(listed(), ZoneAnswer::Clean), 2);
        assert!(matches!(&c[..], [Change::Listed { zone, .. }] if zone == "a.test"));
        assert!(t.listed);
        // Still listed: no new alert.
        assert!(t.observe(&round(listed(), ZoneAnswer::Clean), 2).is_empty());
        // The listing zone times out: no progress towards clearing.
        assert!(
            t.observe(&round(unknown(), ZoneAnswer::Clean), 2)
                .is_empty()
        );
        assert_eq!(t.clean_streak, 0);
        assert!(
            t.observe(&round(ZoneAnswer::Clean, ZoneAnswer::Clean), 2)
                .is_empty()
        );
        assert_eq!(t.clean_streak, 1);
        // A listing in between resets the streak.
        assert!(t.observe(&round(ZoneAnswer::Clean, listed()), 2).len() == 1);
        assert_eq!(t.clean_streak, 0);
        assert!(
            t.observe(&round(ZoneAnswer::Clean, ZoneAnswer::Clean), 2)
                .is_empty()
        );
        assert_eq!(
            t.observe(&round(ZoneAnswer::Clean, ZoneAnswer::Clean), 2),
            vec![Change::Delisted]
        );
        assert!(!t.listed && t.zones.is_empty());
    }

    #[test]
    fn errors_never_list_nor_clear() {
        let mut t = IpTrack::default();
        for _ in 0..5 {
            assert!(t.observe(&round(err(), unknown()), 2).is_empty());
        }
        assert!(!t.listed);
        t.observe(&round(listed(), err()), 1);
        assert!(t.observe(&round(err(), err()), 1).is_empty());
        assert!(t.listed);
        assert_eq!(
            t.observe(&round(ZoneAnswer::Clean, err()), 1),
            vec![Change::Delisted]
        );
    }
}
