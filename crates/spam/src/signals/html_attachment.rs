//! ATTACH_HTML: an HTML, SVG or similar page sent as an attachment — a log-in form that opens
//! locally, out of reach of link scanners (a common credential-phishing carrier).

use super::{Cx, Hit};

pub const TAG: &str = "ATTACH_HTML";

const EXTS: &[&str] = &["htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"];

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let found = cx.doc.attachments.iter().find(|a| {
        let ext = a.name.rsplit_once('.').map(|(_, e)| e.trim()).unwrap_or("");
        EXTS.contains(&ext) || (!a.name.is_empty() && a.content_type == "text/html")
    });
    if let Some(a) = found {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("web page attached as \"{}\"", a.name),
        });
    }
}
