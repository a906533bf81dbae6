//! Human values and where keys stand: "10m", "35MB", DNSBL code ranges and DNS names parse
//! into types here, and a refusal is given the line of its key.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// Where `key` (`a.b`, `a[i].b`, `a.b[i].c`) is set in `text`: the line of its `key =` in the
/// right table (the `i`-th `[[…]]` of an array of tables), else the table's header line. `None`
/// when the key is not written in that form (an inline table, a default).
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    let (table, index) = match table.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((t, i)) => (t, i.parse::<usize>().ok()),
        None => (table, None),
    };
    let mut seen = 0usize;
    let mut in_target = table.is_empty();
    let mut header_line = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|h| h.split_once("]]")) {
            let current = h.0.trim();
            in_target = current == table && index == Some(seen);
            if current == table {
                seen += 1;
            }
        } else if let Some(h) = t.strip_prefix('[').and_then(|h| h.split_once(']')) {
            in_target = h.0.trim() == table && index.is_none();
        } else if in_target
            && let Some(rest) = t.strip_prefix(leaf)
            && rest.trim_start().starts_with('=')
        {
            return Some(n + 1);
        }
        if in_target && header_line.is_none() && !table.is_empty() {
            header_line = Some(n + 1);
        }
    }
    header_line
}

/// The line of `key` in `text`, or of its table's header when the key names a whole table, an
/// element of an array of tables (`srs`, `pools[1]`: a required key is missing there) or the
/// array itself (`pools`: its first element).
pub(super) fn key_or_table_line(text: &str, key: &str) -> Option<usize> {
    // A leaf no trimmed line can start with: only the header of `key`'s own table matches.
    key_line(text, key)
        .or_else(|| key_line(text, &format!("{key}. ")))
        .or_else(|| key_line(text, &format!("{key}[0]. ")))
}

/// One DNSBL answer code or range as written in `[[dnsbl.zones]]` (`"127.0.0.2"`,
/// `"127.0.0.4-127.0.0.7"`): both ends IPv4 in 127.0.0.0/8 (RFC 5782 §2.1), low end first.
pub fn dnsbl_code_range(s: &str) -> Result<(std::net::Ipv4Addr, std::net::Ipv4Addr), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let ip = |x: &str| {
        x.trim()
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .filter(|ip| ip.octets()[0] == 127)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not an IPv4 address in 127.0.0.0/8 \
                     (expected 127.x.y.z or 127.x.y.z-127.x.y.z)"
                )
            })
    };
    let (from, to) = (ip(a)?, ip(b)?);
    if from > to {
        return Err(format!("`{s}`: the range ends before it starts"));
    }
    Ok((from, to))
}

/// A DNS name as a zone may be called: 1–253 characters, labels of 1–63 letters, digits, `-`
/// or `_` not starting or ending with `-`, at least two labels (one trailing dot allowed).
pub fn valid_dns_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = n.split('.').collect();
    !n.is_empty()
        && n.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// toml's message already names the key ("unknown field `x`, expected one of …") and the span;
/// add the line number so the operator can find it.
pub(super) fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

/// Parse "35MB", "10MiB", "512KB", "1000".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 35MB"))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" => 1000,
        "KIB" => 1024,
        "MB" | "M" => 1000 * 1000,
        "MIB" => 1024 * 1024,
        "GB" | "G" => 1000 * 1000 * 1000,
        "GIB" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown size unit `{other}` in `{s}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parse a human duration ("30s", "5m", "1h 30m", "2days").
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("{s:?} is not a duration (e.g. \"30s\", \"5m\")"))
}

/// A duration key: a string with a unit. A bare number is refused with the fix, since "30"
/// could mean seconds or minutes.
struct DurationVisitor;

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration like \"30s\" or \"5m\"")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "{v} is not a duration: give a unit, e.g. \"{v}s\" or \"{v}m\""
        )))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

pub(super) mod human_duration {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

pub(super) mod human_durations {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<String> = d
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .enumerate()
            .map(|(i, s)| {
                parse_duration(s).map_err(|m| serde::de::Error::custom(format!("entry {i}: {m}")))
            })
            .collect()
    }
}

/// A TCP port a connection goes to: 1–65535 (TOML integers are i64, so a larger number reaches
/// here and is refused with the range rather than serde's "expected u16").
pub(super) mod port {
    use super::*;
    pub fn serialize<S: serde::Serializer>(p: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(*p)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let n = i64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is out of range 1–65535")))
    }
}

/// `"IP:PORT"` (listeners, the resolver). A port past 65535 is named as such, not as "invalid
/// socket address syntax"; port 0 on a listener means any free port (tests).
pub(super) mod socket_addr {
    use super::*;
    use std::net::SocketAddr;
    pub fn serialize<S: serde::Serializer>(
        a: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        a.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let s = String::deserialize(d)?;
        parse_socket_addr(&s)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

pub(super) fn parse_socket_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.trim().parse() {
        return Ok(a);
    }
    let port = s
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim().parse::<u64>().ok());
    Err(match port {
        Some(p) if p > 65535 => format!("{s:?}: port {p} is out of range 0–65535"),
        _ => format!("{s:?} is not an address like \"127.0.0.1:2587\" or \"[::1]:2587\""),
    })
}

pub(super) mod human_size {
    use super::*;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    pub fn serialize<S: serde::Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*n)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => parse_size(&s).map_err(serde::de::Error::custom),
        }
    }
}
