//! Which addresses a tenant's webhook may reach (SPEC §9): only public unicast ones. Everything
//! that reaches the relay's own host, its network or its cloud provider is refused — loopback,
//! private (RFC 1918, fc00::/7), link-local, CGNAT, multicast, unspecified, broadcast,
//! documentation/benchmark/reserved ranges and the cloud-metadata addresses — in IPv4, IPv6 and
//! the IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`), which are judged by the IPv4 address inside.
//!
//! The operator may open ranges (`[webhooks] allow_private`); a metadata address stays closed
//! unless it is listed as a single address, since a wide range opened for internal receivers
//! must not hand out the cloud's credentials by accident.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Addresses of cloud instance-metadata services (AWS/GCP/Azure/OpenStack, AWS ECS task
/// metadata, Azure's wire server, Alibaba, AWS over IPv6).
const METADATA: [IpAddr; 5] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// IPv4 ranges that are not public unicast, most specific first, with the name a refusal uses.
const V4: [(&str, &str); 17] = [
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/8", "unspecified (this network)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "reserved (AS112)"),
    ("192.52.193.0/24", "reserved (AMT)"),
    ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
];
/// 240.0.0.0/4 (future use) is handled in code: it also covers the broadcast address.
const V4_RESERVED: (&str, &str) = ("240.0.0.0/4", "reserved (future use)");

/// IPv6 ranges that are not public unicast (after the IPv4-carrying forms are unwrapped).
const V6: [(&str, &str); 13] = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "reserved (IPv4-compatible)"),
    ("64:ff9b:1::/48", "private (local-use NAT64)"),
    ("100::/64", "reserved (discard-only)"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved (IETF protocol assignments)"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved (SRv6)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private (site-local)"),
    ("ff00::/8", "multicast"),
];

fn net(s: &str) -> IpNet {
    // The tables above are literals checked by the tests; a typo would fail them all.
    s.parse()
        .unwrap_or_else(|_| IpNet::from(IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
}

/// The IPv4 address an IPv6 one stands for, if it carries one: mapped, NAT64 well-known
/// prefix, 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let o = ip.octets();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The address a check judges: an IPv6 form carrying an IPv4 address is judged as that IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why `ip` is not a public unicast address (`"loopback"`, `"cloud metadata"`, …), or `None`
/// when it is public.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical(ip);
    if METADATA.contains(&ip) {
        return Some("cloud metadata");
    }
    match ip {
        IpAddr::V4(_) => {
            let hit = V4
                .iter()
                .chain(std::iter::once(&V4_RESERVED))
                .find(|(n, _)| net(n).contains(&ip));
            hit.map(|(_, why)| *why)
        }
        IpAddr::V6(v6) => {
            if let Some((_, why)) = V6.iter().find(|(n, _)| net(n).contains(&ip)) {
                return Some(why);
            }
            // Global unicast is 2000::/3; everything else is unassigned or special.
            (v6.segments()[0] & 0xe000 != 0x2000).then_some("reserved (not global unicast)")
        }
    }
}

/// The operator's exceptions (`[webhooks] allow_private`).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow: Vec<IpNet>,
}

/// A refused address and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is {why}, not a public address")]
pub struct Refused {
    pub ip: IpAddr,
    pub why: &'static str,
}

impl AddressPolicy {
    pub fn new(allow: &[IpNet]) -> AddressPolicy {
        AddressPolicy {
            allow: allow.iter().map(IpNet::trunc).collect(),
        }
    }

    /// Ok when a tenant's webhook may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(why) = non_public(ip) else {
            return Ok(());
        };
        let c = canonical(ip);
        let opened = self.allow.iter().any(|n| {
            let covers = n.contains(&c) || n.contains(&ip);
            let single = n.prefix_len() == n.max_prefix_len();
            covers && (why != "cloud metadata" || single)
        });
        if opened {
            Ok(())
        } else {
            Err(Refused { ip, why })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
    }

    #[test]
    fn tables_parse() {
        for (n, _) in V4.iter().chain(V6.iter()).chain([&V4_RESERVED]) {
            assert!(n.parse::<IpNet>().is_ok(), "{n}");
        }
    }

    #[test]
    fn every_non_public_range_is_refused() {
        let rows: &[(&str, &str)] = &[
            // IPv4
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("169.254.0.1", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.170.2", "cloud metadata"),
            ("168.63.129.16", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.0.0.8", "reserved"),
            ("192.0.0.192", "reserved"),
            ("192.0.2.1", "documentation"),
            ("192.88.99.1", "reserved"),
            ("192.168.1.1", "private"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            // IPv6
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "reserved"),
            ("2001:2::1", "reserved"),
            ("100::1", "discard"),
            ("64:ff9b:1::1", "NAT64"),
            ("5f00::1", "SRv6"),
            ("4000::1", "not global unicast"),
            ("::2", "IPv4-compatible"),
            // IPv4 carried in IPv6: judged by the IPv4 inside
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:7f00:1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::ffff:100.64.0.1", "CGNAT"),
            ("::ffff:192.168.0.1", "private"),
            ("::ffff:224.0.0.1", "multicast"),
            ("::ffff:255.255.255.255", "broadcast"),
            ("64:ff9b::127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:c0a8:101::1", "private"),
        ];
        let open = AddressPolicy::default();
        for (addr, want) in rows {
            let why = non_public(ip(addr)).unwrap_or_else(|| panic!("{addr} passed as public"));
            assert!(why.contains(want), "{addr}: `{why}` lacks `{want}`");
            let e = open.check(ip(addr)).expect_err(addr);
            assert_eq!(e.ip, ip(addr));
            assert!(e.to_string().contains(&ip(addr).to_string()), "{e}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let open = AddressPolicy::default();
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "169.253.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(non_public(ip(addr)), None, "{addr}");
            assert_eq!(open.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allow_private_opens_ranges_but_metadata_only_by_name() {
        let nets: Vec<IpNet> = ["127.0.0.0/8", "10.20.0.0/16", "169.254.0.0/16", "fd00::/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let p = AddressPolicy::new(&nets);
        for addr in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "10.20.3.4",
            "169.254.1.1",
            "fd12::1",
        ] {
            assert_eq!(p.check(ip(addr)), Ok(()), "{addr}");
        }
        for addr in [
            "10.21.0.1",
            "::1",
            "192.168.1.1",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
        ] {
            assert!(p.check(ip(addr)).is_err(), "{addr}");
        }
        let named = AddressPolicy::new(&["169.254.169.254/32".parse().unwrap()]);
        assert_eq!(named.check(ip("169.254.169.254")), Ok(()));
        assert!(named.check(ip("169.254.169.253")).is_err());
    }
}
