//! Doc -> hashed sparse features: body and subject words, OSB sparse bigrams (window 4),
//! a few header tokens (display name, content types, charsets, attachment extensions) and URL
//! tokens (host, registrable domain, TLD). Every feature is an index into a 2^20 space made with
//! xxh3 under a fixed seed, so a model file means the same thing on every machine and run.
//!
//! Deliberately absent (collection artifacts or language shortcuts, see the crate README's
//! "Excluded features"): dates, Received chains, Message-IDs, X-Mailer and list headers (they
//! describe where a training corpus came from, not whether a message is spam); charset names (a
//! language, not a behaviour: Japanese mail is not spam for being ISO-2022-JP); the RFC 2606
//! placeholder domains (`example.com`…) that corpus redaction leaves in URLs; and the subject's
//! reply/forward prefixes (`Re:`, `Fwd:`: one class of a corpus is mostly list conversation, and
//! a prefix is trivially forged); and whether the body is plain text or HTML (see below).

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::limits::{Budget, MAX_TOKEN_LEN, MAX_TOKENS};
use crate::parse::Doc;

/// Bits of the hashed feature space.
pub const DIM_BITS: u32 = 20;
pub const DIM: usize = 1 << DIM_BITS;
const MASK: u64 = (DIM as u64) - 1;
/// Fixed seed: changing it invalidates every model.
pub const SEED: u64 = 0x6f75_7467_7561_7264;
/// OSB window: each word is paired with the next `OSB_WINDOW - 1` words.
const OSB_WINDOW: usize = 4;

/// Namespaces keep the same text in different places apart (subject "free" != body "free").
#[derive(Clone, Copy)]
#[repr(u8)]
enum Ns {
    Body = 1,
    Subject = 2,
    FromName = 3,
    ContentType = 4,
    AttachExt = 6,
    UrlHost = 7,
    UrlDomain = 8,
    UrlTld = 9,
    Pair = 10,
    FromTld = 11,
}

impl Ns {
    fn prefix(self) -> &'static str {
        match self {
            Ns::Body => "",
            Ns::Subject => "subject:",
            Ns::FromName => "from-name:",
            Ns::ContentType => "content-type:",
            Ns::AttachExt => "attachment:",
            Ns::UrlHost => "url-host:",
            Ns::UrlDomain => "url-domain:",
            Ns::UrlTld => "url-tld:",
            Ns::FromTld => "from-tld:",
            Ns::Pair => "",
        }
    }
}

/// Receives each feature index with a lazily built human label (only built when explaining);
/// returns false to stop the extraction early.
pub type Emit<'a> = dyn FnMut(u32, &dyn Fn() -> String) -> bool + 'a;

fn word_hash(w: &str) -> u64 {
    xxh3_64_with_seed(w.as_bytes(), SEED)
}

fn index(ns: Ns, h: u64) -> u32 {
    let x =
        (h ^ (ns as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    ((x >> 29) & MASK) as u32
}

fn pair_index(a: u64, b: u64, dist: usize) -> u32 {
    let x = a.rotate_left(17 * dist as u32) ^ b.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    index(Ns::Pair, x ^ dist as u64)
}

/// Calls `f` with each lowercased word of `text` (at most `max`), reusing one buffer.
/// Pure digit runs become `#N` (N = length), so numbers like dates and prices generalise.
pub fn for_each_word(text: &str, max: usize, mut f: impl FnMut(&str)) -> usize {
    let mut buf = String::with_capacity(MAX_TOKEN_LEN + 4);
    let mut n = 0;
    let mut flush = |buf: &mut String, n: &mut usize| {
        if buf.is_empty() {
            return;
        }
        if buf.len() >= 2 || buf.starts_with('$') {
            if buf.bytes().all(|b| b.is_ascii_digit()) {
                let len = buf.len().min(9);
                buf.clear();
                buf.push('#');
                buf.push(char::from(b'0' + len as u8));
            }
            f(buf);
            *n += 1;
        }
        buf.clear();
    };
    for c in text.chars() {
        if n >= max {
            break;
        }
        if c.is_alphanumeric() || c == '$' || (c == '\'' && !buf.is_empty()) {
            if buf.len() < MAX_TOKEN_LEN {
                if c.is_ascii() {
                    buf.push(c.to_ascii_lowercase());
                } else {
                    buf.extend(c.to_lowercase());
                }
            }
        } else {
            while buf.ends_with('\'') {
                buf.pop();
            }
            flush(&mut buf, &mut n);
        }
    }
    while buf.ends_with('\'') {
        buf.pop();
    }
    if n < max {
        flush(&mut buf, &mut n);
    }
    n
}

/// Words of `text` as unigrams plus OSB pairs in namespace `ns`.
fn text_features(text: &str, ns: Ns, max: usize, budget: &Budget, emit: &mut Emit<'_>) -> bool {
    let mut ring: [(u64, u32); OSB_WINDOW] = [(0, 0); OSB_WINDOW];
    let mut seen = 0usize;
    let mut words: Vec<String> = Vec::new();
    let mut expired = false;
    let mut stopped = false;
    for_each_word(text, max, |w| {
        if expired || stopped {
            return;
        }
        if seen % 256 == 255 && budget.expired() {
            expired = true;
            return;
        }
        let h = word_hash(w);
        let label = || format!("{}{w}", ns.prefix());
        if !emit(index(ns, h), &label) {
            stopped = true;
            return;
        }
        if matches!(ns, Ns::Body) {
            for d in 1..OSB_WINDOW.min(seen + 1) {
                let (ph, _) = ring[(seen + OSB_WINDOW - d) % OSB_WINDOW];
                let slot = (seen + OSB_WINDOW - d) % OSB_WINDOW;
                let label = || {
                    let prev = words.get(slot).map(String::as_str).unwrap_or("?");
                    let gap = "… ".repeat(d - 1);
                    format!("\"{prev} {gap}{w}\"")
                };
                if !emit(pair_index(ph, h, d), &label) {
                    stopped = true;
                    return;
                }
            }
            ring[seen % OSB_WINDOW] = (h, 0);
            // Labels for pairs need the previous words; kept only as a tiny ring of strings.
            if words.len() < OSB_WINDOW {
                words.push(w.to_string());
            } else {
                words[seen % OSB_WINDOW].clear();
                words[seen % OSB_WINDOW].push_str(w);
            }
        }
        seen += 1;
    });
    !(expired || stopped)
}

fn token(ns: Ns, value: &str, emit: &mut Emit<'_>) {
    let label = || format!("{}{value}", ns.prefix());
    emit(index(ns, word_hash(value)), &label);
}

/// Header, attachment and URL tokens (cheap; always emitted first).
fn meta_features(doc: &Doc, emit: &mut Emit<'_>) {
    for_each_word(&doc.from_name, 8, |w| token(Ns::FromName, w, emit));
    // The sender's top-level domain (cheap new TLDs are bought by the thousand for campaigns);
    // not the domain itself, which would only memorise senders.
    if let Some(tld) = generic_tld(&doc.from_domain) {
        token(Ns::FromTld, tld, emit);
    }
    // No `html` / `plain` body tokens: "plain text = list ham, HTML = spam" is how the corpora
    // were collected (2002 ham and today's list posts are plain text; spam and newsletters are
    // HTML). Structure is judged by signals (HTML_ONLY, IMAGE_HEAVY, HIDDEN_TEXT) instead.
    for a in doc.attachments.iter().take(8) {
        token(Ns::ContentType, &a.content_type, emit);
        if let Some((_, ext)) = a.name.rsplit_once('.') {
            token(Ns::AttachExt, ext, emit);
        }
    }
    for u in doc
        .urls
        .iter()
        .filter(|u| !is_placeholder_domain(&u.domain))
    {
        token(Ns::UrlHost, &u.host, emit);
        token(Ns::UrlDomain, &u.domain, emit);
        if let Some(tld) = generic_tld(&u.domain).filter(|_| !u.is_ip) {
            token(Ns::UrlTld, tld, emit);
        }
    }
}

/// The top-level domain when it is a generic one (`com`, `shop`, `top`…). Two-letter country
/// TLDs are left out: they stand for a country and its language (`jp`, `br`), and a message is
/// not spam for coming from Japan.
fn generic_tld(domain: &str) -> Option<&str> {
    let (_, tld) = domain.rsplit_once('.')?;
    (tld.len() > 2).then_some(tld)
}

/// RFC 2606 / 6761 names: never a real destination, but what redaction leaves behind.
pub fn is_placeholder_domain(domain: &str) -> bool {
    ["example.com", "example.net", "example.org"]
        .iter()
        .any(|d| domain == *d || domain.strip_suffix(d).is_some_and(|p| p.ends_with('.')))
        || [".example", ".invalid", ".test", ".localhost"]
            .iter()
            .any(|s| domain.ends_with(s))
}

/// The subject without leading reply/forward prefixes (`Re: Fwd: AW: x` -> `x`).
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut s = subject.trim_start();
    loop {
        let Some((head, rest)) = s.split_once(':') else {
            return s;
        };
        let h = head.trim().to_ascii_lowercase();
        let h = h.trim_end_matches(|c: char| c.is_ascii_digit() || "[]()".contains(c));
        if matches!(
            h,
            "re" | "fw" | "fwd" | "aw" | "sv" | "vs" | "wg" | "tr" | "rv" | "enc"
        ) {
            s = rest.trim_start();
        } else {
            return s;
        }
    }
}

/// Emits every hashed feature of `doc`: metadata, subject, then body (the order matters for
/// early stopping: the emit callback may stop once it has what it needs).
pub fn extract(doc: &Doc, budget: &Budget, emit: &mut Emit<'_>) {
    meta_features(doc, emit);
    let subject = strip_reply_prefixes(&doc.subject);
    if text_features(subject, Ns::Subject, 64, budget, emit) {
        text_features(&doc.text, Ns::Body, MAX_TOKENS, budget, emit);
    }
}

/// Value of each token feature for a message with `n` distinct token features: 1 up to
/// `TOKEN_NORM_K²` features, then falling as 1/sqrt(n), so a long newsletter does not out-vote
/// its own structure just by having many words.
pub fn token_value(n: usize) -> f32 {
    (TOKEN_NORM_K / (n.max(1) as f32).sqrt()).min(1.0)
}
const TOKEN_NORM_K: f32 = 20.0;

/// The sorted, deduplicated feature indices of `doc` (what the model scores).
pub fn indices(doc: &Doc, budget: &Budget) -> Vec<u32> {
    let mut out = Vec::with_capacity(1024);
    extract(doc, budget, &mut |i, _| {
        out.push(i);
        true
    });
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::SCAN_BUDGET;
    use std::time::Instant;

    #[test]
    fn words_are_lowercased_and_numbers_bucketed() {
        let mut v = Vec::new();
        for_each_word("Hello WORLD, it's 2002! $100 a", 100, |w| {
            v.push(w.to_string())
        });
        assert_eq!(v, ["hello", "world", "it's", "#4", "$100"]);
    }

    #[test]
    fn reply_prefixes_and_placeholders_are_not_features() {
        assert_eq!(strip_reply_prefixes("Re: Fwd: AW: invoice"), "invoice");
        assert_eq!(strip_reply_prefixes("RE[2]: x"), "x");
        assert_eq!(strip_reply_prefixes("Note: re-run"), "Note: re-run");
        assert!(is_placeholder_domain("example.com"));
        assert!(is_placeholder_domain("mail.test"));
        assert!(is_placeholder_domain("shop.example.org"));
        assert!(!is_placeholder_domain("myexample.com"));
        assert!(!is_placeholder_domain("examples.com"));
        let with = |subject: &str, charsets: &[&str]| {
            let doc = Doc {
                subject: subject.into(),
                charsets: charsets.iter().map(|c| c.to_string()).collect(),
                ..Doc::default()
            };
            indices(&doc, &Budget::new(Instant::now(), SCAN_BUDGET))
        };
        assert_eq!(with("Re: hello", &["iso-2022-jp"]), with("hello", &[]));
        assert_eq!(generic_tld("mail.shop"), Some("shop"));
        assert_eq!(generic_tld("kojima.co.jp"), None);
    }

    #[test]
    fn indices_are_stable() {
        let doc = Doc {
            subject: "Free money".into(),
            text: "click here now".into(),
            ..Doc::default()
        };
        let b = Budget::new(Instant::now(), SCAN_BUDGET);
        let a = indices(&doc, &b);
        assert_eq!(a, indices(&doc, &b));
        assert!(a.len() >= 2 + 3 + 3);
        assert!(a.iter().all(|&i| (i as usize) < DIM));
    }
}
