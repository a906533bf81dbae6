//! DNSBL zones and what their answers mean (SPEC §4, research/eop-outbound.md §5): which
//! 127.0.0.0/8 codes are listings (and what each means), which are the zone's error codes
//! ("query refused", "via a public resolver", "rate limited" — never a listing). Built-in
//! defaults when `[dnsbl] zones` is empty; `[[dnsbl.zones]]` entries otherwise.

use std::net::Ipv4Addr;

use outguard_types::config::{DnsblZoneConfig, dnsbl_code_range};

/// A configured zone whose codes do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[dnsbl.zones]] {zone}: bad code {value:?} (expected 127.x.y.z or 127.x.y.z-127.x.y.z)")]
pub struct ZoneError {
    pub zone: String,
    pub value: String,
}

/// One listing range with its meaning (`SBL`, `XBL`, … or `listed`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    from: Ipv4Addr,
    to: Ipv4Addr,
    meaning: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    listed: Vec<Range>,
    errors: Vec<Range>,
}

/// What one A answer (all its records) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Listing codes found, with their meanings.
    Listed(Vec<(Ipv4Addr, String)>),
    /// The zone answered one of its error codes: the result says nothing about the IP.
    Error(Ipv4Addr),
    /// Records, but none is a listing code of this zone (e.g. outside 127.0.0.0/8).
    NotListing,
}

fn range(from: [u8; 4], to: [u8; 4], meaning: &str) -> Range {
    Range {
        from: from.into(),
        to: to.into(),
        meaning: meaning.into(),
    }
}

fn spamhaus_errors() -> Vec<Range> {
    vec![
        range(
            [127, 255, 255, 252],
            [127, 255, 255, 252],
            "typo in DNSBL name",
        ),
        range(
            [127, 255, 255, 254],
            [127, 255, 255, 254],
            "query via a public/open resolver refused",
        ),
        range(
            [127, 255, 255, 255],
            [127, 255, 255, 255],
            "excessive number of queries",
        ),
    ]
}

/// The built-in zones: Spamhaus ZEN, SpamCop, Barracuda, UCEPROTECT L1, PSBL.
pub fn defaults() -> Vec<Zone> {
    let zen = Zone {
        name: "zen.spamhaus.org".into(),
        listed: vec![
            range([127, 0, 0, 2], [127, 0, 0, 2], "SBL"),
            range([127, 0, 0, 3], [127, 0, 0, 3], "CSS"),
            range([127, 0, 0, 4], [127, 0, 0, 7], "XBL"),
            range([127, 0, 0, 9], [127, 0, 0, 9], "DROP"),
            range([127, 0, 0, 10], [127, 0, 0, 11], "PBL"),
        ],
        errors: spamhaus_errors(),
    };
    let simple = |name: &str| Zone {
        name: name.into(),
        listed: vec![range([127, 0, 0, 2], [127, 0, 0, 2], "listed")],
        errors: Vec::new(),
    };
    vec![
        zen,
        simple("bl.spamcop.net"),
        simple("b.barracudacentral.org"),
        simple("dnsbl-1.uceprotect.net"),
        simple("psbl.surriel.com"),
    ]
}

/// The same rule `check-config` applies (`outguard_types::config::dnsbl_code_range`).
fn parse_range(zone: &str, s: &str, meaning: &str) -> Result<Range, ZoneError> {
    let (from, to) = dnsbl_code_range(s).map_err(|_| ZoneError {
        zone: zone.into(),
        value: s.into(),
    })?;
    Ok(Range {
        from,
        to,
        meaning: meaning.into(),
    })
}

impl Zone {
    /// A configured zone. `listed = []` means every code 127.0.0.2–127.0.0.255.
    pub fn from_config(c: &DnsblZoneConfig) -> Result<Zone, ZoneError> {
        let name = c.name.trim_end_matches('.').to_ascii_lowercase();
        let mut listed = c
            .listed
            .iter()
            .map(|s| parse_range(&name, s, "listed"))
            .collect::<Result<Vec<_>, _>>()?;
        if listed.is_empty() {
            listed.push(range([127, 0, 0, 2], [127, 0, 0, 255], "listed"));
        }
        let errors = c
            .errors
            .iter()
            .map(|s| parse_range(&name, s, "error code"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Zone {
            name,
            listed,
            errors,
        })
    }

    /// The zones in force: the configured ones, else the built-in defaults.
    pub fn all(cfg: &[DnsblZoneConfig]) -> Result<Vec<Zone>, ZoneError> {
        if cfg.is_empty() {
            return Ok(defaults());
        }
        cfg.iter().map(Zone::from_config).collect()
    }

    /// What the A records of one query say. Error codes win over listings (an answer that
    /// holds one is not trustworthy); codes outside the listing ranges are ignored.
    pub fn classify(&self, codes: &[Ipv4Addr]) -> Answer {
        if let Some(e) = codes
            .iter()
            .find(|c| self.errors.iter().any(|r| r.from <= **c && **c <= r.to))
        {
            return Answer::Error(*e);
        }
        let listed: Vec<(Ipv4Addr, String)> = codes
            .iter()
            .filter_map(|c| {
                let r = self.listed.iter().find(|r| r.from <= *c && *c <= r.to)?;
                Some((*c, r.meaning.clone()))
            })
            .collect();
        if listed.is_empty() {
            Answer::NotListing
        } else {
            Answer::Listed(listed)
        }
    }

    /// What an error code means, for the table and the log.
    pub fn error_meaning(&self, code: Ipv4Addr) -> String {
        let r = self.errors.iter().find(|r| r.from <= code && code <= r.to);
        r.map_or_else(|| "error code".to_string(), |r| r.meaning.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, d)
    }

    #[test]
    fn zen_codes() {
        let zen = &defaults()[0];
        let cases: [(&[Ipv4Addr], Answer); 8] = [
            (&[ip(2)], Answer::Listed(vec![(ip(2), "SBL".into())])),
            (&[ip(3)], Answer::Listed(vec![(ip(3), "CSS".into())])),
            (&[ip(6)], Answer::Listed(vec![(ip(6), "XBL".into())])),
            (&[ip(9)], Answer::Listed(vec![(ip(9), "DROP".into())])),
            (&[ip(11)], Answer::Listed(vec![(ip(11), "PBL".into())])),
            (&[ip(8)], Answer::NotListing),
            (
                &[Ipv4Addr::new(127, 255, 255, 254)],
                Answer::Error(Ipv4Addr::new(127, 255, 255, 254)),
            ),
            (
                &[ip(2), Ipv4Addr::new(127, 255, 255, 255)],
                Answer::Error(Ipv4Addr::new(127, 255, 255, 255)),
            ),
        ];
        for (codes, want) in cases {
            assert_eq!(zen.classify(codes), want, "{codes:?}");
        }
        assert_eq!(
            zen.classify(&[Ipv4Addr::new(10, 0, 0, 2)]),
            Answer::NotListing
        );
        assert_eq!(zen.classify(&[ip(1)]), Answer::NotListing);
    }

    #[test]
    fn configured_zones() {
        let c = DnsblZoneConfig {
            name: "BL.Test.".into(),
            listed: vec!["127.0.0.2".into(), "127.0.0.4-127.0.0.7".into()],
            errors: vec!["127.255.255.254".into()],
        };
        let z = Zone::from_config(&c).expect("zone");
        assert_eq!(z.name, "bl.test");
        assert!(matches!(z.classify(&[ip(5)]), Answer::Listed(_)));
        assert_eq!(z.classify(&[ip(3)]), Answer::NotListing);
        assert!(matches!(
            z.classify(&[Ipv4Addr::new(127, 255, 255, 254)]),
            Answer::Error(_)
        ));
        let open = Zone::from_config(&DnsblZoneConfig {
            name: "x.test".into(),
            listed: vec![],
            errors: vec![],
        })
        .expect("zone");
        assert!(matches!(open.classify(&[ip(200)]), Answer::Listed(_)));
        for bad in ["10.0.0.1", "127.0.0.9-127.0.0.2", "nope"] {
            let c = DnsblZoneConfig {
                name: "x.test".into(),
                listed: vec![bad.into()],
                errors: vec![],
            };
            assert!(Zone::from_config(&c).is_err(), "{bad}");
        }
        assert_eq!(Zone::all(&[]).expect("defaults").len(), 5);
    }
}
