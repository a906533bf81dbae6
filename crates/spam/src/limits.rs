//! Work caps for hostile input. Every loop in parsing, tokenising and signal checks is bounded by
//! one of these numbers, and the whole scan by a wall-clock budget, so a crafted message costs at
//! most a few milliseconds (issue 4: deep nesting, 10 MB base64, 100k headers, broken encodings).

use std::time::{Duration, Instant};

/// Bytes of the raw message handed to the MIME parser; the rest is not looked at (scored as
/// `MESSAGE_TRUNCATED`). Spam content lives in the first few hundred kilobytes.
pub const MAX_PARSE_BYTES: usize = 512 * 1024;
/// Header lines kept before the parser sees the message; further headers are dropped.
pub const MAX_HEADERS: usize = 256;
/// MIME parts walked.
pub const MAX_PARTS: usize = 64;
/// Decoded text (plain + HTML-derived) kept for tokenising, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Raw HTML bytes scanned for links, images and hidden text.
pub const MAX_HTML_BYTES: usize = 128 * 1024;
/// Words tokenised from the body.
pub const MAX_TOKENS: usize = 2_000;
/// Links and URLs kept.
pub const MAX_URLS: usize = 64;
/// Length of one word token in bytes (longer words are cut).
pub const MAX_TOKEN_LEN: usize = 40;
/// Wall-clock budget for one scan; past it the scan stops adding features.
pub const SCAN_BUDGET: Duration = Duration::from_millis(40);

/// A deadline checked in the hot loops (cheaply: callers check every N items).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    pub fn new(start: Instant, budget: Duration) -> Budget {
        Budget {
            deadline: start + budget,
        }
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}
