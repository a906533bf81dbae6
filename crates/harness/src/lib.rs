//! Loopback test scene shared by the tests and `outguard demo`: a DNS server whose zones can be
//! edited while it runs ([`DnsServer`]) and SMTP sinks that record every message with the peer
//! (source) IP and can be scripted to answer 4xx/5xx ([`SmtpSink`]), and a reader of HTTP
//! requests and whole HTTP(S) receivers for webhooks ([`http`]), with a throwaway certificate
//! authority for TLS peers whose clients verify ([`TestCa`]). Everything binds to 127.0.0.0/8
//! only.

pub mod dns;
pub mod http;
pub mod sink;
mod tls;

pub use dns::{DnsServer, Zones};
pub use sink::{Received, Reply, Script, SinkOptions, SmtpSink};
pub use tls::{ServerCert, TestCa, self_signed_cert, self_signed_pem};
