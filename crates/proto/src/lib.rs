//! Sans-IO SMTP for Outguard: the server session state machine (bytes in, events and replies
//! out, no sockets), the reply values every refusal is made of, the DATA reader that closes SMTP
//! smuggling, DSN building and ARF parsing, SRS address
//! rewriting. The I/O loop in the binary owns sockets, TLS and timeouts.

pub mod data;
pub mod from_field;
pub mod header_fields;
pub mod milter;
pub mod policy_delegation;
pub mod reply;
pub mod sasl;
pub mod session;

pub use reply::Reply;
pub use session::{Event, ListenerKind, Session, SessionConfig};
pub mod arf;
pub mod dsn;
pub mod dsn_report;
pub mod srs;
