//! MESSAGE_TRUNCATED / MESSAGE_UNPARSABLE: the message hit a work cap (huge, too many headers
//! or parts, time budget) or is not a MIME message at all. Reported so the verdict says how much
//! of the message it is based on.

use super::{Cx, Hit};

pub const TAG_TRUNCATED: &str = "MESSAGE_TRUNCATED";
pub const TAG_UNPARSABLE: &str = "MESSAGE_UNPARSABLE";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    if cx.doc.unparsable {
        out.push(Hit {
            tag: TAG_UNPARSABLE,
            value: 1.0,
            detail: "not a parsable message".into(),
        });
    } else if cx.doc.truncated {
        out.push(Hit {
            tag: TAG_TRUNCATED,
            value: 1.0,
            detail: "only the first part of the message was scanned".into(),
        });
    }
}
