//! DNSSEC status of an answer, the way Postfix (`smtp_dns_support_level = dnssec`) and Exim get
//! it: ask the operator's validating resolver (`[dns] resolver`, on loopback) with the AD and
//! EDNS DO bits set, and believe the AD bit of its answer (`[dns] dnssec = "trust_ad"`).
//!
//! Why our own query and not hickory-resolver: with its DNSSEC features off (as we build it),
//! hickory 0.26 sets neither AD nor DO in its queries, so a validating resolver never sets AD in
//! the answer (RFC 6840 §5.7), and its cache rebuilds messages on CNAME chains. One query and
//! one answer over UDP (TCP when truncated) with hickory-proto's codec is ~100 lines.
//!
//! Why not validate signatures in-process (hickory's `dnssec-ring`): it needs a trust anchor
//! kept current by us (RFC 5011 rollovers), answers with the whole chain of DNSKEY/DS records
//! from the resolver, and brings its own failure modes (clock skew, algorithm support) into
//! every delivery; a local unbound already does all of that, is what every DANE deployment of
//! Postfix and Exim relies on, and tests can present "validated" answers by setting the AD bit.
//! The price: the AD bit is only as good as the path to the resolver, so `check-config` accepts
//! `trust_ad` only with a resolver on loopback.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Bytes we accept in a UDP answer (RFC 9715's safe EDNS size).
const UDP_PAYLOAD: u16 = 1232;

/// What the resolver said about one name and type.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: ResponseCode,
    /// The AD bit: the resolver validated the answer (positive or negative).
    pub secure: bool,
    /// The answer section's records of the asked type (after any CNAME chain).
    pub records: Vec<RData>,
}

impl Answer {
    /// NOERROR with records.
    pub fn found(&self) -> bool {
        self.code == ResponseCode::NoError && !self.records.is_empty()
    }

    /// NXDOMAIN or NOERROR without records (NODATA).
    pub fn none(&self) -> bool {
        self.code == ResponseCode::NXDomain
            || (self.code == ResponseCode::NoError && self.records.is_empty())
    }
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("`{0}` is not a domain name")]
    Name(String),
    #[error("no answer from {0} in time")]
    Timeout(SocketAddr),
    #[error("{server}: {reason}")]
    Io { server: SocketAddr, reason: String },
    #[error("{server}: malformed answer: {reason}")]
    Malformed { server: SocketAddr, reason: String },
}

/// Asks one resolver, reading the AD bit of its answers.
#[derive(Debug, Clone)]
pub struct AdResolver {
    server: SocketAddr,
    timeout: Duration,
    attempts: u32,
}

impl AdResolver {
    pub fn new(server: SocketAddr) -> AdResolver {
        AdResolver {
            server,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }

    /// Ask for `name`/`rtype` (recursion desired, AD and DO set).
    pub async fn query(&self, name: &str, rtype: RecordType) -> Result<Answer, QueryError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let qname = Name::from_str(&fqdn).map_err(|_| QueryError::Name(name.to_string()))?;
        let mut req = Message::query();
        req.metadata.recursion_desired = true;
        req.metadata.authentic_data = true;
        let mut edns = Edns::new();
        edns.set_dnssec_ok(true).set_max_payload(UDP_PAYLOAD);
        req.set_edns(edns);
        req.add_query(Query::query(qname, rtype));
        let packet = req.to_vec().map_err(|e| self.malformed(e.to_string()))?;
        let mut last = QueryError::Timeout(self.server);
        for _ in 0..self.attempts {
            match tokio::time::timeout(self.timeout, self.udp(&packet, req.metadata.id)).await {
                Ok(Ok(resp)) if resp.metadata.truncation => {
                    return self.answer(&req, self.tcp(&packet).await?, rtype);
                }
                Ok(Ok(resp)) => return self.answer(&req, resp, rtype),
                Ok(Err(e)) => last = e,
                Err(_) => last = QueryError::Timeout(self.server),
            }
        }
        Err(last)
    }

    fn malformed(&self, reason: String) -> QueryError {
        QueryError::Malformed {
            server: self.server,
            reason,
        }
    }

    fn io(&self, e: std::io::Error) -> QueryError {
        QueryError::Io {
            server: self.server,
            reason: e.to_string(),
        }
    }

    /// One UDP exchange; datagrams with another id or from another address are ignored.
    async fn udp(&self, packet: &[u8], id: u16) -> Result<Message, QueryError> {
        let local: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap_or(self.server)
        } else {
            "[::]:0".parse().unwrap_or(self.server)
        };
        let sock = UdpSocket::bind(local).await.map_err(|e| self.io(e))?;
        sock.send_to(packet, self.server)
            .await
            .map_err(|e| self.io(e))?;
        // Larger than what we asked for: an answer that ignores our EDNS size still decodes.
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.map_err(|e| self.io(e))?;
            if from != self.server {
                continue;
            }
            match Message::from_vec(&buf[..n]) {
                Ok(m) if m.metadata.id == id => return Ok(m),
                _ => continue,
            }
        }
    }

    async fn tcp(&self, packet: &[u8]) -> Result<Message, QueryError> {
        let exchange = async {
            let mut s = TcpStream::connect(self.server).await?;
            let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
            s.write_u16(len).await?;
            s.write_all(packet).await?;
            let n = s.read_u16().await?;
            let mut buf = vec![0u8; usize::from(n)];
            s.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| QueryError::Timeout(self.server))?
            .map_err(|e| self.io(e))?;
        Message::from_vec(&buf).map_err(|e| self.malformed(e.to_string()))
    }

    /// Check the answer belongs to the question and keep the records of the asked type.
    fn answer(
        &self,
        req: &Message,
        resp: Message,
        rtype: RecordType,
    ) -> Result<Answer, QueryError> {
        if resp.metadata.message_type != MessageType::Response
            || resp.metadata.op_code != OpCode::Query
            || resp.metadata.id != req.metadata.id
        {
            return Err(self.malformed("not the answer to our query".into()));
        }
        let asked = req.queries.first();
        // Name equality is case-insensitive (a resolver may echo 0x20-randomised case).
        let same = resp
            .queries
            .first()
            .zip(asked)
            .is_some_and(|(a, q)| a.query_type() == q.query_type() && a.name() == q.name());
        if !same {
            return Err(self.malformed("answer to another question".into()));
        }
        let records = resp
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.clone())
            .collect();
        Ok(Answer {
            code: resp.metadata.response_code,
            secure: resp.metadata.authentic_data,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_harness::{DnsServer, Zones};

    #[tokio::test]
    async fn reads_the_ad_bit_only_for_secure_zones() {
        let mut z = Zones::new();
        z.mx("signed.test", 10, "mx.signed.test")
            .a("mx.signed.test", [127, 0, 0, 9].into())
            .mx("plain.test", 10, "mx.plain.test")
            .tlsa("_25._tcp.mx.signed.test", 3, 1, 1, &[7; 32])
            .servfail("broken.signed.test")
            .secure("signed.test");
        let dns = DnsServer::start(z).await.expect("dns");
        let r = AdResolver::new(dns.addr());

        let mx = r.query("signed.test", RecordType::MX).await.expect("mx");
        assert!(mx.found() && mx.secure, "{mx:?}");
        let plain = r.query("plain.test", RecordType::MX).await.expect("mx");
        assert!(plain.found() && !plain.secure, "{plain:?}");
        let tlsa = r
            .query("_25._tcp.mx.signed.test", RecordType::TLSA)
            .await
            .expect("tlsa");
        assert!(tlsa.found() && tlsa.secure);
        assert!(matches!(tlsa.records[0], RData::TLSA(_)));
        // A validated "no such record" is secure too (NODATA and NXDOMAIN).
        let nodata = r
            .query("mx.signed.test", RecordType::TLSA)
            .await
            .expect("q");
        assert!(nodata.none() && nodata.secure);
        let nx = r.query("_25._tcp.nx.signed.test", RecordType::TLSA).await;
        let nx = nx.expect("q");
        assert!(nx.none() && nx.code == ResponseCode::NXDomain && nx.secure);
        let sf = r
            .query("broken.signed.test", RecordType::TLSA)
            .await
            .expect("q");
        assert_eq!(sf.code, ResponseCode::ServFail);
        assert!(!sf.secure);
        assert!(matches!(
            r.query("a..b", RecordType::A).await,
            Err(QueryError::Name(_))
        ));
    }
}
