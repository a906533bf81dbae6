//! A small, bounded HTML scanner for what the signals need and mail-parser's `html_to_text`
//! does not give: links with their visible text, image tags, and text hidden by styling.
//! It is not a full HTML parser; it is linear in the (capped) input and never fails.

use crate::limits::MAX_URLS;

/// `<a href>` and the text a reader sees for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub href: String,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct HtmlInfo {
    pub links: Vec<Link>,
    pub img_tags: usize,
    /// Visible-looking characters inside elements styled to be invisible.
    pub hidden_chars: usize,
    pub hidden_sample: String,
    /// Letters in the largest single hidden element (a paragraph of filler vs a preheader).
    pub hidden_max: usize,
    /// Byte ranges of `html` inside hidden filler elements (closed within the scan window, at
    /// least `FILLER_LETTERS` letters), in order: left out of the words the model reads, so
    /// hidden filler is not evidence either way (the HIDDEN_* signals still weigh it).
    pub hidden_spans: Vec<(usize, usize)>,
    pub forms: usize,
}

/// Letters in one hidden element from which it is filler rather than a preheader line.
const FILLER_LETTERS: usize = 100;

/// `html` without the hidden spans `analyse` found.
pub fn without_hidden(html: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(html.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.push_str(&html[at..s]);
        out.push(' ');
        at = e;
    }
    out.push_str(&html[at..]);
    out
}

/// Scans `html` once.
pub fn analyse(html: &str) -> HtmlInfo {
    let mut info = HtmlInfo::default();
    let b = html.as_bytes();
    let mut i = 0;
    let mut hidden_checks = 0;
    while let Some(off) = memchr(b'<', &b[i..]) {
        let start = i + off + 1;
        let Some(close) = memchr(b'>', &b[start..]) else {
            break;
        };
        let tag_end = start + close;
        let tag = &html[start..tag_end];
        i = tag_end + 1;
        let name_len = tag
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let name = &tag[..name_len];
        let attrs = &tag[name_len..];
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        match () {
            _ if is("a") && info.links.len() < MAX_URLS => {
                if let Some(href) = attr(attrs, "href") {
                    // Scan ahead for the visible text, but keep walking the tags inside the link
                    // (an <img> in a link is still an image).
                    let (text, _) = inner_text(html, i, "</a");
                    info.links.push(Link {
                        href: decode_entities(href),
                        text,
                    });
                }
            }
            _ if is("img") => info.img_tags += 1,
            _ if is("form") => info.forms += 1,
            _ => {}
        }
        if name_len > 0 && hidden_checks < 32 && is_hidden_style(attrs) {
            hidden_checks += 1;
            let closing = format!("</{}", name.to_ascii_lowercase());
            let (text, end) = inner_text(html, i, &closing);
            let n = text.chars().filter(|c| c.is_alphanumeric()).count();
            let closed = html
                .get(end..end + closing.len())
                .is_some_and(|c| c.eq_ignore_ascii_case(&closing));
            if closed
                && n >= FILLER_LETTERS
                && info.hidden_spans.last().is_none_or(|&(_, e)| e <= i)
            {
                info.hidden_spans.push((i, end));
            }
            if n > 0 {
                info.hidden_chars += n;
                info.hidden_max = info.hidden_max.max(n);
                if info.hidden_sample.len() < 60 {
                    info.hidden_sample
                        .push_str(&text.chars().take(60).collect::<String>());
                }
            }
        }
    }
    info
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

/// Value of attribute `name` (quoted or bare) in a tag's attribute text.
pub fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = lower[from..].find(name) {
        let at = from + p;
        from = at + name.len();
        let before_ok = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let vstart = attrs.len() - rest.len() + 1;
        let v = attrs[vstart..].trim_start();
        let vstart = attrs.len() - v.len();
        return Some(match v.as_bytes().first() {
            Some(q @ (b'"' | b'\'')) => {
                let inner = &attrs[vstart + 1..];
                let end = inner.bytes().position(|c| c == *q).unwrap_or(inner.len());
                &inner[..end]
            }
            _ => {
                let end = v
                    .bytes()
                    .position(|c| c.is_ascii_whitespace())
                    .unwrap_or(v.len());
                &v[..end]
            }
        });
    }
    None
}

/// Text (tags stripped, whitespace collapsed, at most 200 chars) from `from` up to `closing`.
fn inner_text(html: &str, from: usize, closing: &str) -> (String, usize) {
    let window_end = (from + 4096).min(html.len());
    let mut window_end_ok = window_end;
    while window_end_ok > from && !html.is_char_boundary(window_end_ok) {
        window_end_ok -= 1;
    }
    let window = &html[from..window_end_ok];
    let lower = window.to_ascii_lowercase();
    let end = lower.find(closing).unwrap_or(window.len());
    let mut out = String::new();
    let mut in_tag = false;
    let mut last_space = true;
    for c in window[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
        if out.len() >= 200 {
            break;
        }
    }
    (decode_entities(out.trim()), from + end)
}

fn is_hidden_style(attrs: &str) -> bool {
    if attrs.len() < 6 || attrs.len() > 400 || !attrs.contains('=') {
        return false;
    }
    let has = |needle: &[u8]| {
        attrs
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if !(has(b"style") || has(b"size")) {
        return false;
    }
    let a: String = attrs
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    a.contains("display:none")
        || a.contains("visibility:hidden")
        || a.contains("font-size:0")
        || a.contains("font-size:1px")
        || a.contains("opacity:0;")
        || a.contains("opacity:0\"")
        || (a.contains("color:#fff") && !a.contains("background"))
        || (a.contains("color:white") && !a.contains("background"))
        || a.contains("size=\"0\"")
        || a.contains("size=0")
}

/// Decodes the handful of entities that matter for URLs and link text.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&amp;", "&")
        .replace("&#46;", ".")
        .replace("&#x2e;", ".")
        .replace("&nbsp;", " ")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_hidden() {
        let h = r#"<p>Hi <a HREF="http://1.2.3.4/x">www.paypal.com</a> <img src=x>
            <div style="display: none">buy cheap pills now</div><a href=http://e.com/>e</a></p>"#;
        let info = analyse(h);
        assert_eq!(info.links.len(), 2);
        assert_eq!(info.links[0].href, "http://1.2.3.4/x");
        assert_eq!(info.links[0].text, "www.paypal.com");
        assert_eq!(info.links[1].href, "http://e.com/");
        assert_eq!(info.img_tags, 1);
        assert!(info.hidden_chars > 10);
    }

    #[test]
    fn survives_garbage() {
        for s in [
            "<",
            "<a href=",
            "<a href='x",
            "<<<>>>",
            "<a href=\"é\">é",
            "<div style=display:none>é",
        ] {
            let _ = analyse(s);
        }
    }
}
