//! Accepting connections without falling over (SPEC §9: exhausting one listener never stops
//! the others). A failed `accept` is either about that one connection (the peer reset it before
//! we took it: try the next at once) or about the process (out of file descriptors `EMFILE` /
//! `ENFILE`, out of buffers): then the pending connection stays queued and the socket stays
//! readable, so retrying at once would spin. We sleep [`BACKOFF`] instead, log the first error
//! of a run and how many followed when accepting works again (one line per episode, not one
//! per retry), and never leave the loop.
//!
//! The descriptor budget (`fd_limit`) keeps the listeners' caps under the process limit, so
//! with sane caps this path is a last resort, not the control.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Wait between retries while accepting fails for want of resources.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// One listener's accept-error episode, for logging it once.
#[derive(Debug)]
pub struct AcceptErrors {
    listener: &'static str,
    failing: u64,
}

impl AcceptErrors {
    pub fn new(listener: &'static str) -> AcceptErrors {
        AcceptErrors {
            listener,
            failing: 0,
        }
    }
}

/// Errors that concern only the connection being accepted.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The next connection; resource errors are waited out, never returned.
pub async fn accept(listener: &TcpListener, errors: &mut AcceptErrors) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(c) => {
                if errors.failing > 0 {
                    tracing::warn!(
                        listener = errors.listener,
                        failed = errors.failing,
                        "accepting connections again"
                    );
                    errors.failing = 0;
                }
                return c;
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if errors.failing == 0 {
                    tracing::error!(
                        listener = errors.listener,
                        error = %e,
                        "accept failed; retrying every 100 ms until it works again"
                    );
                }
                errors.failing += 1;
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}
