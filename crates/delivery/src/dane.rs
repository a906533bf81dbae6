//! DANE for SMTP (RFC 7672, RFC 6698/7671): which MX hosts of a domain publish DNSSEC-validated
//! TLSA records (`plan`), and a rustls certificate verifier that accepts a server only when its
//! certificate matches one of them (`DaneVerifier`).
//!
//! When it applies (RFC 7672 §2.2): `[dns] dnssec = "trust_ad"`, the domain's MX answer is
//! validated (or a validated "no MX" for the implicit MX), the MX host's address answer is
//! validated, and `_PORT._tcp.<mxhost>` (the port actually used) has TLSA records, validated.
//! Then TLS is mandatory for that host: usable records (DANE-TA(2), DANE-EE(3)) must match the
//! certificate; records that are all unusable (PKIX-TA/EE(0/1), unknown selectors or matching
//! types, RFC 7672 §3.1.3) still make TLS mandatory without authentication, as Postfix does.
//! A failed TLSA or address lookup on a validated zone defers the host (no downgrade by
//! SERVFAIL). Anything unvalidated means "no DANE": the destination's ordinary policy applies.
//!
//! Matching (RFC 7671 §5): DANE-EE compares the leaf's full certificate (selector 0) or its
//! SubjectPublicKeyInfo (1), exactly (0), by SHA-256 (1) or SHA-512 (2); names and expiry are
//! ignored (§5.1). DANE-TA needs a certificate of the presented chain that matches, and the
//! leaf must chain to it (webpki path building with that certificate as the only trust anchor,
//! expiry checked) and name the MX host or the recipient domain (RFC 7672 §3.2.3; we do not
//! follow CNAMEs, so the TLSA base domain is the MX host). A DANE-TA record for a key that is
//! not in the chain as a certificate is not supported (RFC 7671 §5.2.2 asks servers to send it).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest as _, Sha256, Sha512};

use super::dnssec::{AdResolver, Answer, QueryError};

/// One TLSA record: `usage selector matching data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// DANE-TA: a trust anchor of the chain.
pub const DANE_TA: u8 = 2;
/// DANE-EE: the server's own certificate or key.
pub const DANE_EE: u8 = 3;

impl Tlsa {
    /// Usable for SMTP (RFC 7672 §3.1.3): DANE-TA or DANE-EE, a known selector and matching
    /// type, and a digest of the right length.
    pub fn usable(&self) -> bool {
        let len_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        matches!(self.usage, DANE_TA | DANE_EE) && self.selector <= 1 && len_ok
    }

    /// The record as written in a zone file, the data shortened (`3 1 1 a1b2c3d4e5f6…`).
    pub fn short(&self) -> String {
        let hex: String = self
            .data
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        let more = if self.data.len() > 6 { "…" } else { "" };
        format!(
            "{} {} {} {hex}{more}",
            self.usage, self.selector, self.matching
        )
    }

    /// Whether this record designates `cert` (DER), by selector and matching type.
    pub fn matches(&self, cert: &[u8]) -> bool {
        let selected = match self.selector {
            0 => cert,
            1 => match spki(cert) {
                Some(s) => s,
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => Sha256::digest(selected).as_slice() == self.data.as_slice(),
            2 => Sha512::digest(selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }
}

/// One DER element read off the front of some bytes.
struct Der<'a> {
    tag: u8,
    content: &'a [u8],
    /// Tag, length and content.
    whole: &'a [u8],
    /// What follows the element.
    rest: &'a [u8],
}

fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some(Der {
        tag,
        content: &rest[..len],
        whole: &input[..header + len],
        rest: &rest[len..],
    })
}

/// The SubjectPublicKeyInfo (the whole DER element) of an X.509 certificate (RFC 5280 §4.1):
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … }.
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    let certificate = der_element(cert).filter(|e| e.tag == SEQUENCE)?;
    let mut tbs = der_element(certificate.content)
        .filter(|e| e.tag == SEQUENCE)?
        .content;
    let first = der_element(tbs)?;
    if first.tag == 0xa0 {
        tbs = first.rest; // explicit version
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        tbs = der_element(tbs)?.rest;
    }
    let spki = der_element(tbs).filter(|e| e.tag == SEQUENCE)?;
    Some(spki.whole)
}

/// Why a certificate chain was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DaneError {
    #[error("DANE: no TLSA record of {owner} matches the certificate chain (records: {records})")]
    NoMatch { owner: String, records: String },
    #[error("DANE: {owner} record {record} matches a CA of the chain, but {reason}")]
    TaChain {
        owner: String,
        record: String,
        reason: String,
    },
}

/// Accepts a server certificate only when it matches the host's usable TLSA records; records
/// which record matched, for the trace.
#[derive(Debug)]
pub struct DaneVerifier {
    /// `_25._tcp.mx.example`.
    owner: String,
    /// Usable records only.
    records: Vec<Tlsa>,
    /// Reference identifiers for DANE-TA: the MX host, then the recipient domain.
    names: Vec<String>,
    provider: Arc<CryptoProvider>,
    matched: Mutex<Option<Tlsa>>,
}

impl DaneVerifier {
    pub fn new(owner: &str, records: Vec<Tlsa>, names: Vec<String>) -> DaneVerifier {
        DaneVerifier {
            owner: owner.to_string(),
            records: records.into_iter().filter(Tlsa::usable).collect(),
            names,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            matched: Mutex::new(None),
        }
    }

    /// The record that matched in the last handshake.
    pub fn matched(&self) -> Option<Tlsa> {
        self.matched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The record that authenticates `ee` (with `intermediates`, as the server sent them).
    pub fn check(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<&Tlsa, DaneError> {
        if let Some(r) = self
            .records
            .iter()
            .find(|r| r.usage == DANE_EE && r.matches(ee))
        {
            return Ok(r);
        }
        let mut ta_failure = None;
        for r in self.records.iter().filter(|r| r.usage == DANE_TA) {
            for ca in intermediates.iter().filter(|c| r.matches(c)) {
                match self.chain_to(ca, ee, intermediates, now) {
                    Ok(()) => return Ok(r),
                    Err(reason) => {
                        ta_failure = Some(DaneError::TaChain {
                            owner: self.owner.clone(),
                            record: r.short(),
                            reason,
                        })
                    }
                }
            }
        }
        Err(ta_failure.unwrap_or_else(|| DaneError::NoMatch {
            owner: self.owner.clone(),
            records: self
                .records
                .iter()
                .map(Tlsa::short)
                .collect::<Vec<_>>()
                .join(", "),
        }))
    }

    /// Whether `ee` chains to `ca` (as the only trust anchor) and names one of `self.names`.
    fn chain_to(
        &self,
        ca: &CertificateDer<'_>,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| format!("it is not a usable trust anchor: {e}"))?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
        let mut last = String::from("no name to check");
        for name in &self.names {
            let Ok(server_name) = ServerName::try_from(name.clone()) else {
                continue;
            };
            match webpki.verify_server_cert(ee, intermediates, &server_name, &[], now) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, now) {
            Ok(r) => {
                *self.matched.lock().unwrap_or_else(PoisonError::into_inner) = Some(r.clone());
                Ok(ServerCertVerified::assertion())
            }
            // `Error::Other` shows our message (`CertificateError::Other` would show its Debug).
            Err(e) => Err(rustls::Error::Other(OtherError(Arc::new(e)))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client config that authenticates the server with `verifier` alone.
pub fn client_config(verifier: Arc<DaneVerifier>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = verifier.provider.clone();
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What DANE says about one MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDane {
    /// Usable records: TLS mandatory, the certificate must match one of them.
    Authenticated { owner: String, records: Vec<Tlsa> },
    /// Records, none usable: TLS mandatory, any certificate (RFC 7672 §3.1.3, Postfix).
    Encrypt { owner: String },
    /// A lookup failed where validated records may exist: do not try this host now.
    Defer { owner: String, reason: String },
}

impl HostDane {
    /// The TLSA owner name (`_25._tcp.mx.example`).
    pub fn owner(&self) -> &str {
        match self {
            HostDane::Authenticated { owner, .. }
            | HostDane::Encrypt { owner }
            | HostDane::Defer { owner, .. } => owner,
        }
    }
}

/// DANE for one domain's MX hosts: hosts that are not listed get no DANE.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub hosts: HashMap<String, HostDane>,
}

/// The domain's MX answer could not be had (the round is deferred).
#[derive(Debug, Clone, thiserror::Error)]
#[error("DNSSEC lookup of the MX of {domain} failed: {reason}")]
pub struct PlanError {
    pub domain: String,
    pub reason: String,
}

fn failed(a: &Result<Answer, QueryError>) -> Option<String> {
    match a {
        Err(e) => Some(e.to_string()),
        Ok(a) if a.code != ResponseCode::NoError && a.code != ResponseCode::NXDomain => {
            Some(format!("{} answer", a.code))
        }
        Ok(_) => None,
    }
}

/// The DANE plan for mail to `domain` over `hops` (MX host, address): RFC 7672 §2.2.
pub async fn plan(
    dns: &AdResolver,
    domain: &str,
    hops: &[(String, SocketAddr)],
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let mx = dns.query(domain, RecordType::MX).await;
    if let Some(reason) = failed(&mx) {
        return Err(PlanError {
            domain: domain.to_string(),
            reason,
        });
    }
    let Ok(mx) = mx else { return Ok(plan) };
    if !mx.secure {
        tracing::debug!(domain, "no DANE: the MX answer is not DNSSEC-validated");
        return Ok(plan);
    }
    let secure_hosts: BTreeSet<String> = if mx.found() {
        mx.records
            .iter()
            .filter_map(|r| match r {
                RData::MX(m) => Some(m.exchange.to_ascii()),
                _ => None,
            })
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect()
    } else {
        BTreeSet::from([domain.trim_end_matches('.').to_ascii_lowercase()])
    };
    for (host, addr) in hops {
        if !secure_hosts.contains(host) || plan.hosts.contains_key(host) {
            continue;
        }
        if let Some(d) = host_dane(dns, host, addr).await {
            plan.hosts.insert(host.clone(), d);
        }
    }
    Ok(plan)
}

/// RFC 7672 §2.2.2: TLSA only under validated address records; a failure there defers.
async fn host_dane(dns: &AdResolver, host: &str, addr: &SocketAddr) -> Option<HostDane> {
    let owner = format!("_{}._tcp.{host}", addr.port());
    let defer = |reason: String| {
        Some(HostDane::Defer {
            owner: owner.clone(),
            reason,
        })
    };
    let rtype = if addr.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    };
    let address = dns.query(host, rtype).await;
    if let Some(reason) = failed(&address) {
        return defer(format!("address lookup of {host} failed: {reason}"));
    }
    if !address.is_ok_and(|a| a.secure) {
        tracing::debug!(host, "no DANE: the address answer is not DNSSEC-validated");
        return None;
    }
    let tlsa = dns.query(&owner, RecordType::TLSA).await;
    if let Some(reason) = failed(&tlsa) {
        return defer(format!("TLSA lookup of {owner} failed: {reason}"));
    }
    let tlsa = tlsa.ok().filter(|a| a.secure && a.found())?;
    let records: Vec<Tlsa> = tlsa
        .records
        .iter()
        .filter_map(|r| match r {
            RData::TLSA(t) => Some(Tlsa {
                usage: t.cert_usage.into(),
                selector: t.selector.into(),
                matching: t.matching.into(),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .collect();
    Some(if records.iter().any(Tlsa::usable) {
        HostDane::Authenticated { owner, records }
    } else {
        HostDane::Encrypt { owner }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_harness::{DnsServer, TestCa, Zones, self_signed_cert};

    fn sha256(b: &[u8]) -> Vec<u8> {
        Sha256::digest(b).to_vec()
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn verifier(records: Vec<Tlsa>, names: &[&str]) -> DaneVerifier {
        let names = names.iter().map(|n| n.to_string()).collect();
        DaneVerifier::new("_25._tcp.mx.dane.test", records, names)
    }

    fn rec(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    #[test]
    fn spki_is_found_in_rcgen_certificates() {
        let c = self_signed_cert(&["mx.dane.test"]).expect("cert");
        assert_eq!(spki(&c.chain[0]), Some(c.spki.as_slice()));
        assert_eq!(spki(b"\x30\x03\x02\x01"), None, "truncated");
        assert_eq!(spki(&[]), None);
    }

    #[test]
    fn dane_ee_matches_key_or_certificate_by_any_matching_type() {
        let c = self_signed_cert(&["mx.dane.test"]).expect("cert");
        let other = self_signed_cert(&["mx.dane.test"]).expect("cert");
        let ee = &c.chain[0];
        let cases = [
            ("3 1 1", rec(3, 1, 1, sha256(&c.spki))),
            ("3 0 1", rec(3, 0, 1, sha256(ee))),
            ("3 1 2", rec(3, 1, 2, Sha512::digest(&c.spki).to_vec())),
            ("3 1 0", rec(3, 1, 0, c.spki.clone())),
            ("3 0 0", rec(3, 0, 0, ee.to_vec())),
        ];
        for (what, r) in cases {
            assert!(r.usable(), "{what}");
            // DANE-EE ignores the name: the verifier is asked for another host.
            let v = verifier(vec![r.clone()], &["unrelated.example"]);
            assert_eq!(v.check(ee, &[], now()).ok(), Some(&r), "{what}");
            assert!(v.check(&other.chain[0], &[], now()).is_err(), "{what}");
        }
        // A wrong digest among right ones: the right one wins; alone it refuses.
        let wrong = rec(3, 1, 1, sha256(&other.spki));
        let v = verifier(vec![wrong.clone(), rec(3, 1, 1, sha256(&c.spki))], &[]);
        assert!(v.check(ee, &[], now()).is_ok());
        let e = verifier(vec![wrong], &[])
            .check(ee, &[], now())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no TLSA record of _25._tcp.mx.dane.test matches"),
            "{e}"
        );
    }

    #[test]
    fn unusable_records_are_told_apart() {
        let d = vec![0u8; 32];
        assert!(rec(3, 1, 1, d.clone()).usable());
        assert!(rec(2, 0, 1, d.clone()).usable());
        assert!(!rec(1, 1, 1, d.clone()).usable(), "PKIX-EE");
        assert!(!rec(0, 0, 1, d.clone()).usable(), "PKIX-TA");
        assert!(!rec(3, 2, 1, d.clone()).usable(), "selector 2");
        assert!(!rec(3, 1, 3, d.clone()).usable(), "matching 3");
        assert!(!rec(3, 1, 1, vec![0; 31]).usable(), "short digest");
        assert!(!rec(3, 1, 2, d).usable(), "sha512 needs 64 bytes");
        // The verifier keeps only the usable ones: a PKIX-EE record never authenticates.
        let c = self_signed_cert(&["mx.dane.test"]).expect("cert");
        let v = verifier(vec![rec(1, 1, 1, sha256(&c.spki))], &["mx.dane.test"]);
        assert!(v.check(&c.chain[0], &[], now()).is_err());
    }

    #[test]
    fn dane_ta_needs_the_chain_and_the_name() {
        let ca = TestCa::new("DANE test CA").expect("ca");
        let good = ca.server_cert(&["mx.dane.test"]).expect("cert");
        let (leaf, ca_der) = (&good.chain[0], &good.chain[1]);
        let r = rec(2, 0, 1, sha256(ca_der));
        // 2 0 1: the CA sent in the chain matches, the leaf chains to it and names the host.
        let v = verifier(vec![r.clone()], &["mx.dane.test", "dane.test"]);
        assert_eq!(v.check(leaf, &good.chain[1..], now()).ok(), Some(&r));
        // The recipient domain is a reference identifier too.
        let v = verifier(vec![r.clone()], &["mx.other.test", "mx.dane.test"]);
        assert!(v.check(leaf, &good.chain[1..], now()).is_ok());
        // The right CA but a leaf for another name: refused, saying why.
        let named = ca.server_cert(&["someone-else.test"]).expect("cert");
        let v = verifier(vec![r.clone()], &["mx.dane.test"]);
        let e = v
            .check(&named.chain[0], &named.chain[1..], now())
            .unwrap_err();
        assert!(matches!(e, DaneError::TaChain { .. }), "{e}");
        assert!(e.to_string().contains("not valid for name"), "{e}");
        // The CA not in the chain the server sent: no match.
        assert!(matches!(
            v.check(leaf, &[], now()),
            Err(DaneError::NoMatch { .. })
        ));
        // Another CA's leaf sent with our CA's certificate: does not chain.
        let other = TestCa::new("other CA").expect("ca");
        let forged = other.server_cert(&["mx.dane.test"]).expect("cert");
        let chain = [ca_der.clone()];
        assert!(v.check(&forged.chain[0], &chain, now()).is_err());
        // DANE-TA must not match the leaf itself.
        let v = verifier(vec![rec(2, 0, 1, sha256(leaf))], &["mx.dane.test"]);
        assert!(v.check(leaf, &good.chain[1..], now()).is_err());
    }

    #[tokio::test]
    async fn plan_follows_rfc_7672_section_2_2() {
        let spki = vec![9u8; 32];
        let mut z = Zones::new();
        z.mx("dane.test", 10, "mx.dane.test")
            .a("mx.dane.test", [127, 0, 0, 30].into())
            .tlsa("_2525._tcp.mx.dane.test", 3, 1, 1, &spki)
            .secure("dane.test")
            // Secure MX to a host in an unsigned zone: no DANE for that host.
            .mx("mixed.test", 10, "mx.unsigned.test")
            .a("mx.unsigned.test", [127, 0, 0, 31].into())
            .tlsa("_2525._tcp.mx.unsigned.test", 3, 1, 1, &spki)
            .secure("mixed.test")
            // Unsigned domain pointing at a signed host: no DANE at all.
            .mx("plain.test", 10, "mx.dane.test")
            // Only a PKIX-EE record: TLS mandatory, unauthenticated.
            .mx("pkix.test", 10, "mx.pkix.test")
            .a("mx.pkix.test", [127, 0, 0, 32].into())
            .tlsa("_2525._tcp.mx.pkix.test", 1, 1, 1, &spki)
            .secure("pkix.test")
            // TLSA SERVFAIL under validated addresses: defer.
            .mx("broken.test", 10, "mx.broken.test")
            .a("mx.broken.test", [127, 0, 0, 33].into())
            .servfail("_2525._tcp.mx.broken.test")
            .secure("broken.test")
            // Implicit MX: a validated "no MX" and the domain's own TLSA.
            .a("implicit.test", [127, 0, 0, 34].into())
            .tlsa("_2525._tcp.implicit.test", 3, 1, 1, &spki)
            .secure("implicit.test")
            .servfail("gone.test");
        let dns = DnsServer::start(z).await.expect("dns");
        let r = AdResolver::new(dns.addr());
        let hop =
            |h: &str, last: u8| vec![(h.to_string(), SocketAddr::from(([127, 0, 0, last], 2525)))];
        let p = plan(&r, "dane.test", &hop("mx.dane.test", 30))
            .await
            .expect("plan");
        assert_eq!(
            p.hosts.get("mx.dane.test"),
            Some(&HostDane::Authenticated {
                owner: "_2525._tcp.mx.dane.test".into(),
                records: vec![rec(3, 1, 1, spki.clone())],
            })
        );
        let p = plan(&r, "mixed.test", &hop("mx.unsigned.test", 31)).await;
        assert!(p.expect("plan").hosts.is_empty());
        let p = plan(&r, "plain.test", &hop("mx.dane.test", 30)).await;
        assert!(p.expect("plan").hosts.is_empty());
        let p = plan(&r, "pkix.test", &hop("mx.pkix.test", 32))
            .await
            .expect("plan");
        assert!(matches!(
            p.hosts.get("mx.pkix.test"),
            Some(HostDane::Encrypt { .. })
        ));
        let p = plan(&r, "broken.test", &hop("mx.broken.test", 33))
            .await
            .expect("plan");
        let Some(HostDane::Defer { reason, .. }) = p.hosts.get("mx.broken.test") else {
            panic!("{p:?}");
        };
        assert!(
            reason.contains("TLSA lookup of _2525._tcp.mx.broken.test failed"),
            "{reason}"
        );
        let p = plan(&r, "implicit.test", &hop("implicit.test", 34))
            .await
            .expect("plan");
        assert!(matches!(
            p.hosts.get("implicit.test"),
            Some(HostDane::Authenticated { .. })
        ));
        let e = plan(&r, "gone.test", &hop("mx.gone.test", 35))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("MX of gone.test"), "{e}");
    }
}
