//! Structural signals: one file per signal, each a pure function of the parsed `Doc` (and the
//! sender context) that emits named tags. A tag's weight is not set here: it is a feature the
//! model learns like any token (see `model.rs`), so a tag only says *what* was seen, and `detail`
//! says it in words ("link text shows paypal.com, link goes to 185.12.3.4").

use crate::parse::Doc;

mod all_caps;
mod brand_links;
mod bulk;
mod charset;
mod credential_harvest;
mod display_name_spoof;
mod exec_attachment;
mod hidden_text;
mod html_attachment;
mod html_only;
mod image_heavy;
mod ip_url;
mod link_mismatch;
pub mod lists;
mod lookalike;
mod parse_limits;
mod punctuation;
mod reply_to_freemail;
mod sender_links;
mod shortener;
mod url_tricks;

/// One signal that fired: stable tag, strength (usually 1.0), and a human sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub tag: &'static str,
    pub value: f32,
    pub detail: String,
}

/// What a signal may look at.
pub struct Cx<'a> {
    pub doc: &'a Doc,
    /// The authenticated sender's domain (envelope/account), when the relay knows it.
    pub sender_domain: Option<&'a str>,
    /// The sending tenant's own domains.
    pub tenant_domains: &'a [String],
}

type Check = fn(&Cx<'_>, &mut Vec<Hit>);

/// Every check, in a fixed order (the order of reasons with equal weight).
const CHECKS: &[Check] = &[
    html_only::check,
    image_heavy::check,
    hidden_text::check,
    link_mismatch::check,
    display_name_spoof::check,
    reply_to_freemail::check,
    shortener::check,
    exec_attachment::check,
    charset::check,
    all_caps::check,
    punctuation::check,
    bulk::check,
    ip_url::check,
    credential_harvest::check,
    brand_links::check,
    url_tricks::check,
    html_attachment::check,
    lookalike::check,
    sender_links::check,
    parse_limits::check,
];

/// Every tag a check can emit. A model stores one weight per entry; adding a tag is
/// backwards-compatible (an unknown tag has weight 0 until retrained).
pub const TAGS: &[&str] = &[
    html_only::TAG,
    image_heavy::TAG,
    hidden_text::TAG,
    link_mismatch::TAG,
    display_name_spoof::TAG_BRAND,
    display_name_spoof::TAG_NAME_DOMAIN,
    display_name_spoof::TAG_OWN_DOMAIN,
    reply_to_freemail::TAG,
    shortener::TAG,
    exec_attachment::TAG_EXEC,
    exec_attachment::TAG_MACRO,
    charset::TAG,
    all_caps::TAG_SUBJECT,
    all_caps::TAG_BODY,
    punctuation::TAG,
    bulk::TAG,
    ip_url::TAG,
    credential_harvest::TAG,
    parse_limits::TAG_TRUNCATED,
    parse_limits::TAG_UNPARSABLE,
    brand_links::TAG,
    url_tricks::TAG_OBFUSCATED,
    url_tricks::TAG_BRAND_HOST,
    html_attachment::TAG,
    lookalike::TAG_LOOKALIKE,
    lookalike::TAG_RANDOM_LOCAL,
    sender_links::TAG,
    hidden_text::TAG_FILLER,
];

/// Position of `tag` in `TAGS`.
pub fn tag_index(tag: &str) -> Option<usize> {
    TAGS.iter().position(|t| *t == tag)
}

/// Runs every check.
pub fn run(cx: &Cx<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for check in CHECKS {
        check(cx, &mut hits);
    }
    hits
}

/// Share of letters that are upper case, and the letter count.
pub(crate) fn upper_ratio(s: &str) -> (f32, usize) {
    let (mut up, mut letters) = (0usize, 0usize);
    for c in s.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if c.is_uppercase() {
            up += 1;
        }
    }
    if letters == 0 {
        (0.0, 0)
    } else {
        (up as f32 / letters as f32, letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_emitted_tag_is_listed() {
        let mut seen = std::collections::HashSet::new();
        for t in TAGS {
            assert!(seen.insert(*t), "duplicate tag {t}");
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            );
        }
    }
}
