//! IMAGE_HEAVY: images carry the message and there is little text (text-in-image spam, QR-code
//! phishing).

use super::{Cx, Hit};

pub const TAG: &str = "IMAGE_HEAVY";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    let images = d.html_info.img_tags + d.image_parts;
    if images == 0 {
        return;
    }
    let text_chars = d.text.chars().filter(|c| c.is_alphanumeric()).count();
    if text_chars < 300 * images.min(4) {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("{images} image(s) and only {text_chars} letters of text"),
        });
    }
}
