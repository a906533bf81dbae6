//! A small authoritative DNS server on loopback (UDP and TCP on the same port) for tests and the
//! demo. Zones are a map of (name, type) → records that can be changed while the server runs
//! (DNSBL tests list and delist IPs), and a name can be made to answer SERVFAIL.
//!
//! Why not hickory-server's `Catalog`: its zone handlers are shared immutably once registered and
//! it has no way to script a SERVFAIL for one name; what a test needs is ~150 lines on top of
//! hickory-proto's wire format (the same message codec hickory-server uses), so this is that.
//!
//! Answers: records of the asked type → NOERROR with them; the name exists with other types →
//! NOERROR/NODATA; unknown name → NXDOMAIN. Negative answers carry an SOA with a 1 s minimum so
//! resolver caches forget quickly. Every record has TTL 1 for the same reason.
//!
//! DNSSEC, as a validating resolver presents it: names under a zone marked [`Zones::secure`]
//! get the AD (authenticated data) bit on their answers, positive or negative, when the query
//! asked for it (AD or EDNS DO set, RFC 6840 §5.7), as unbound does. Nothing is signed: the AD
//! bit is all a client that trusts its local resolver (DANE, `[dns] dnssec = "trust_ad"`) reads.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use hickory_proto::op::{Message, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, MX, SOA, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

const TTL: u32 = 1;

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The records a [`DnsServer`] answers with. Builder methods take names with or without the
/// trailing dot.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    records: HashMap<(String, RecordType), Vec<RData>>,
    servfail: HashSet<String>,
    /// Zones whose answers carry the AD bit (the name itself and every name under it).
    secure: HashSet<String>,
}

impl Zones {
    pub fn new() -> Zones {
        Zones::default()
    }

    fn push(&mut self, name: &str, rtype: RecordType, data: RData) -> &mut Self {
        self.records
            .entry((key(name), rtype))
            .or_default()
            .push(data);
        self
    }

    fn fqdn(name: &str) -> Name {
        let n = format!("{}.", name.trim_end_matches('.'));
        Name::from_str(&n).unwrap_or_else(|_| Name::root())
    }

    /// `domain MX preference exchange`.
    pub fn mx(&mut self, domain: &str, preference: u16, exchange: &str) -> &mut Self {
        self.push(
            domain,
            RecordType::MX,
            RData::MX(MX::new(preference, Self::fqdn(exchange))),
        )
    }

    /// RFC 7505 null MX: `domain MX 0 .`.
    pub fn null_mx(&mut self, domain: &str) -> &mut Self {
        self.push(domain, RecordType::MX, RData::MX(MX::new(0, Name::root())))
    }

    pub fn a(&mut self, name: &str, ip: Ipv4Addr) -> &mut Self {
        self.push(name, RecordType::A, RData::A(A(ip)))
    }

    pub fn aaaa(&mut self, name: &str, ip: Ipv6Addr) -> &mut Self {
        self.push(name, RecordType::AAAA, RData::AAAA(AAAA(ip)))
    }

    /// A or AAAA depending on the address.
    pub fn ip(&mut self, name: &str, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(v4) => self.a(name, v4),
            IpAddr::V6(v6) => self.aaaa(name, v6),
        }
    }

    pub fn txt(&mut self, name: &str, text: &str) -> &mut Self {
        self.push(
            name,
            RecordType::TXT,
            RData::TXT(TXT::new(vec![text.to_string()])),
        )
    }

    /// `_port._tcp.host TLSA usage selector matching data` (RFC 6698).
    pub fn tlsa(
        &mut self,
        name: &str,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &[u8],
    ) -> &mut Self {
        let rdata = TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data.to_vec(),
        );
        self.push(name, RecordType::TLSA, RData::TLSA(rdata))
    }

    /// Answers for `zone` and every name under it carry the AD bit ("DNSSEC-validated").
    pub fn secure(&mut self, zone: &str) -> &mut Self {
        self.secure.insert(key(zone));
        self
    }

    fn is_secure(&self, name: &str) -> bool {
        self.secure
            .iter()
            .any(|z| name == z || name.ends_with(&format!(".{z}")))
    }

    /// Every query for `name` answers SERVFAIL.
    pub fn servfail(&mut self, name: &str) -> &mut Self {
        self.servfail.insert(key(name));
        self
    }

    /// Forget every record of `name` (all types) and its SERVFAIL mark.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        let k = key(name);
        self.records.retain(|(n, _), _| *n != k);
        self.servfail.remove(&k);
        self
    }

    /// Forget the records of one type at `name`.
    pub fn remove_type(&mut self, name: &str, rtype: RecordType) -> &mut Self {
        self.records.remove(&(key(name), rtype));
        self
    }

    fn answer(&self, name: &Name, rtype: RecordType) -> (ResponseCode, Vec<Record>) {
        let k = key(&name.to_ascii());
        if self.servfail.contains(&k) {
            return (ResponseCode::ServFail, Vec::new());
        }
        if let Some(list) = self.records.get(&(k.clone(), rtype)) {
            let recs = list
                .iter()
                .map(|d| Record::from_rdata(name.clone(), TTL, d.clone()))
                .collect();
            return (ResponseCode::NoError, recs);
        }
        if self.records.keys().any(|(n, _)| *n == k) {
            (ResponseCode::NoError, Vec::new())
        } else {
            (ResponseCode::NXDomain, Vec::new())
        }
    }
}

/// A running DNS server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zones: Arc<RwLock<Zones>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsServer {
    /// Serve `zones` on 127.0.0.1 (a free port; UDP and, when the same port is free, TCP).
    pub async fn start(zones: Zones) -> std::io::Result<DnsServer> {
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = udp.local_addr()?;
        let zones = Arc::new(RwLock::new(zones));
        let mut tasks = vec![tokio::spawn(serve_udp(udp, zones.clone()))];
        if let Ok(tcp) = TcpListener::bind(addr).await {
            tasks.push(tokio::spawn(serve_tcp(tcp, zones.clone())));
        }
        Ok(DnsServer { addr, zones, tasks })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change the zones while the server runs: `dns.update(|z| { z.a("x.bl.test", ip); })`.
    pub fn update(&self, f: impl FnOnce(&mut Zones)) {
        let mut z = self.zones.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut z);
    }
}

fn respond(zones: &RwLock<Zones>, packet: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(packet).ok()?;
    if req.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut meta = Metadata::response_from_request(&req.metadata);
    meta.authoritative = true;
    meta.recursion_available = true;
    let mut resp = Message::new(meta.id, MessageType::Response, meta.op_code);
    resp.metadata = meta;
    let Some(q) = req.queries.first() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp.to_vec().ok();
    };
    resp.add_query(q.clone());
    let wants_ad =
        req.metadata.authentic_data || req.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let (code, answers) = {
        let z = zones.read().unwrap_or_else(PoisonError::into_inner);
        let (code, answers) = z.answer(q.name(), q.query_type());
        resp.metadata.authentic_data =
            wants_ad && code != ResponseCode::ServFail && z.is_secure(&key(&q.name().to_ascii()));
        (code, answers)
    };
    resp.metadata.response_code = code;
    if code != ResponseCode::ServFail && answers.is_empty() {
        let soa = SOA::new(
            Zones::fqdn("ns.test"),
            Zones::fqdn("hostmaster.test"),
            1,
            3600,
            600,
            86400,
            TTL,
        );
        let owner = q.name().base_name();
        resp.add_authority(Record::from_rdata(owner, TTL, RData::SOA(soa)));
    }
    resp.add_answers(answers);
    resp.to_vec().ok()
}

async fn serve_udp(sock: UdpSocket, zones: Arc<RwLock<Zones>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(out) = respond(&zones, &buf[..n]) {
            let _ = sock.send_to(&out, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zones: Arc<RwLock<Zones>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let zones = zones.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let mut packet = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut packet).await.is_err() {
                    return;
                }
                let Some(out) = respond(&zones, &packet) else {
                    return;
                };
                let Ok(len) = u16::try_from(out.len()) else {
                    return;
                };
                if stream.write_u16(len).await.is_err() || stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}
