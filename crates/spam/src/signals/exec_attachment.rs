//! Dangerous attachments: executables and scripts (ATTACH_EXECUTABLE, including double
//! extensions like `invoice.pdf.exe`) and macro-enabled Office files (ATTACH_MACRO_DOC).

use super::{Cx, Hit};

pub const TAG_EXEC: &str = "ATTACH_EXECUTABLE";
pub const TAG_MACRO: &str = "ATTACH_MACRO_DOC";

const EXEC: &[&str] = &[
    "exe", "scr", "pif", "bat", "cmd", "com", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
    "msi", "jar", "ps1", "lnk", "iso", "img", "cpl", "reg", "dll", "apk", "app",
];
const MACRO: &[&str] = &[
    "docm", "xlsm", "pptm", "dotm", "xltm", "xlam", "ppsm", "sldm",
];

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let mut exec = false;
    let mut mac = false;
    for a in &cx.doc.attachments {
        let ext = a.name.rsplit_once('.').map(|(_, e)| e.trim()).unwrap_or("");
        let exec_type = a.content_type.contains("msdownload") || a.content_type.contains("x-msdos");
        if !exec && (EXEC.contains(&ext) || exec_type) {
            exec = true;
            out.push(Hit {
                tag: TAG_EXEC,
                value: 1.0,
                detail: format!("executable attachment \"{}\"", a.name),
            });
        }
        if !mac && MACRO.contains(&ext) {
            mac = true;
            out.push(Hit {
                tag: TAG_MACRO,
                value: 1.0,
                detail: format!("macro-enabled document \"{}\"", a.name),
            });
        }
    }
}
