//! Look-alike text that dodges filters and fools readers: a capital `I` standing for a small `l`
//! inside a word of the display name or subject (`BIueCross PoIicy`) — LOOKALIKE_LETTERS; and a
//! sender address whose local part is a random string (`gvkzdgbf@…`, a throw-away account) —
//! FROM_RANDOM_LOCALPART.

use super::{Cx, Hit};

pub const TAG_LOOKALIKE: &str = "LOOKALIKE_LETTERS";
pub const TAG_RANDOM_LOCAL: &str = "FROM_RANDOM_LOCALPART";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    let word = d
        .from_name
        .split_whitespace()
        .chain(d.subject.split_whitespace())
        .find(|w| capital_i_for_l(w));
    if let Some(w) = word {
        out.push(Hit {
            tag: TAG_LOOKALIKE,
            value: 1.0,
            detail: format!("\"{w}\" has a capital I between small letters"),
        });
    }
    let local = d.from_addr.split('@').next().unwrap_or("");
    if random_local(local) {
        out.push(Hit {
            tag: TAG_RANDOM_LOCAL,
            value: 1.0,
            detail: format!("sender address {} looks machine-made", d.from_addr),
        });
    }
}

/// A small letter, then `I`, then a small letter (`BIue` is caught through `PoIicy`-like
/// words too: `I` after a capital and before a small letter, in a word with small letters).
fn capital_i_for_l(w: &str) -> bool {
    let c: Vec<char> = w.chars().collect();
    (1..c.len().saturating_sub(1)).any(|i| {
        c[i] == 'I'
            && c[i + 1].is_ascii_lowercase()
            && (c[i - 1].is_ascii_lowercase() || (c[i - 1].is_ascii_uppercase() && i == 1))
    })
}

/// Six or more letters with almost no vowels (`gvkzdgbf`), or letters followed directly by a run
/// of 8+ digits (`michelle5702021495`; `order-20251203` has a separator and does not count).
fn random_local(local: &str) -> bool {
    let letters: Vec<char> = local.chars().filter(char::is_ascii_alphabetic).collect();
    let vowels = letters
        .iter()
        .filter(|c| "aeiouAEIOU".contains(**c))
        .count();
    let all_letters = !letters.is_empty() && letters.len() == local.chars().count();
    let no_vowels = all_letters && letters.len() >= 6 && vowels <= 1;
    let (mut run, mut longest, mut prev_letter, mut after_letter) = (0usize, 0usize, false, false);
    for c in local.chars() {
        if c.is_ascii_digit() {
            if run == 0 {
                after_letter = prev_letter;
            }
            run += 1;
            if after_letter {
                longest = longest.max(run);
            }
        } else {
            run = 0;
        }
        prev_letter = c.is_ascii_alphabetic();
    }
    no_vowels || longest >= 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_and_random_senders() {
        assert!(capital_i_for_l("PoIicy"));
        assert!(capital_i_for_l("BIueCross"));
        assert!(!capital_i_for_l("Ideas"));
        assert!(!capital_i_for_l("iPhone"));
        assert!(!capital_i_for_l("API"));
        assert!(!capital_i_for_l("CI"));
        assert!(random_local("gvkzdgbf"));
        assert!(random_local("michelleswamp5702021495"));
        assert!(!random_local("john.smith"));
        assert!(!random_local("noreply"));
        assert!(!random_local("order-20251203"));
    }
}
