//! A small, deterministic set of *modern* training messages added to the corpus TRAIN split.
//! The 2002 corpus has almost no brand phishing, link-text tricks, shorteners, malware
//! attachments or business-e-mail-compromise, so without these the model would leave those
//! signals' weights at zero. Both sides are covered (e.g. real brand receipts and genuine
//! password-reset mail as ham), so the model learns what the *signals* are worth rather than
//! "brand name = spam". Generated from templates, never from the TEST split.

const BRANDS: &[(&str, &str)] = &[
    ("PayPal", "paypal.com"),
    ("Microsoft 365", "microsoft.com"),
    ("Apple", "apple.com"),
    ("Amazon", "amazon.com"),
    ("Netflix", "netflix.com"),
    ("DHL", "dhl.com"),
    ("DocuSign", "docusign.net"),
    ("Wells Fargo", "wellsfargo.com"),
    ("Dropbox", "dropbox.com"),
    ("Coinbase", "coinbase.com"),
];
const BAD_TLDS: &[&str] = &["xyz", "top", "info", "online", "site"];
const LURES: &[&str] = &[
    "We detected unusual activity and your account has been limited. Please verify your account to restore full access.",
    "Your password expires today. Sign in to your account to keep using your mailbox.",
    "A payment could not be processed. Update your billing information to avoid suspension.",
    "Your account will be suspended within 24 hours unless you confirm your identity.",
    "Security alert: a sign-in from a new device was blocked. Review the activity and verify your identity.",
];
const WORK: &[&str] = &[
    "Attached is the signed statement of work for the migration project; the kickoff is on Monday.",
    "Here are the minutes from the design review. Action items are listed at the end.",
    "The quarterly figures are in the spreadsheet; revenue is slightly ahead of plan.",
    "Please review the draft contract before Thursday so legal can send it out.",
    "The release notes for version 4.2 are ready, including the fixes for the login timeout.",
];

fn msg(from: &str, reply_to: Option<&str>, subject: &str, ctype: &str, body: &str) -> Vec<u8> {
    let rt = reply_to
        .map(|r| format!("Reply-To: {r}\n"))
        .unwrap_or_default();
    format!("From: {from}\n{rt}To: user@example.net\nSubject: {subject}\nMIME-Version: 1.0\n{ctype}\n\n{body}\n").into_bytes()
}

fn attachment(text: &str, name: &str, mime: &str) -> (String, String) {
    (
        "Content-Type: multipart/mixed; boundary=\"s\"".to_string(),
        format!(
            "--s\nContent-Type: text/plain; charset=utf-8\n\n{text}\n--s\nContent-Type: {mime}; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\nUEsDBBQABgAIAAAAIQDfpNJsWgEAACAFAAATAAgCW0NvbnRlbnRfVHlwZXNd\n--s--"
        ),
    )
}

/// `(raw message, is_spam)` pairs, always the same bytes in the same order.
pub fn modern_examples() -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    for (i, (brand, dom)) in BRANDS.iter().enumerate() {
        let base = dom.split('.').next().unwrap_or(dom);
        let tld = BAD_TLDS[i % BAD_TLDS.len()];
        let lure = LURES[i % LURES.len()];
        let host = if i % 2 == 0 {
            format!("185.{}.{}.{}", 20 + i, 3 * i + 1, 200 - i)
        } else {
            format!("{base}-secure-login.{tld}")
        };
        let html = format!(
            "<html><body><p>Dear customer,</p><p>{lure}</p><p><a href=\"http://{host}/auth\">https://www.{dom}/account</a></p><p>{brand} Team</p></body></html>"
        );
        out.push((
            msg(
                &format!("\"{brand} Support\" <no-reply@{base}-alerts.{tld}>"),
                None,
                "Action required on your account",
                "Content-Type: text/html; charset=utf-8",
                &html,
            ),
            true,
        ));
        let short = ["bit.ly", "tinyurl.com", "rb.gy", "cutt.ly", "t.ly"][i % 5];
        let text = format!("{lure}\n\nContinue here: https://{short}/{base}{i}x\n\n{brand}");
        out.push((
            msg(
                &format!("\"{brand}\" <service@{base}-notice.{tld}>"),
                None,
                "Important notice",
                "Content-Type: text/plain; charset=utf-8",
                &text,
            ),
            true,
        ));
        let (ext, mime) = [
            ("invoice.pdf.exe", "application/octet-stream"),
            (
                "scan.docm",
                "application/vnd.ms-word.document.macroEnabled.12",
            ),
            ("order.js", "application/javascript"),
            ("payment.iso", "application/octet-stream"),
            (
                "remit.xlsm",
                "application/vnd.ms-excel.sheet.macroEnabled.12",
            ),
        ][i % 5];
        let (ct, body) = attachment(
            "Please see the attached document and enable content to view it.",
            ext,
            mime,
        );
        out.push((
            msg(
                &format!("accounts@billing-{i}.{tld}"),
                None,
                &format!("Overdue invoice {}", 4000 + i),
                &ct,
                &body,
            ),
            true,
        ));
        let bec = format!(
            "Hi,\n\nI need you to handle an urgent wire transfer of ${},{}00 today. I am in meetings, reply by email only and keep this confidential.\n\nThanks",
            10 + i,
            i
        );
        out.push((
            msg(
                &format!("\"Chief Executive\" <ceo@company{i}.com>"),
                Some(&format!("ceo.office{i}@gmail.com")),
                "Urgent request",
                "Content-Type: text/plain; charset=utf-8",
                &bec,
            ),
            true,
        ));

        // Ham: the same brands' genuine mail, business mail with ordinary attachments, newsletters.
        let receipt = format!(
            "<html><body><p>Hello,</p><p>Thanks for your order. Your receipt is available in your account: <a href=\"https://www.{dom}/orders\">www.{dom}/orders</a>.</p><p>If you did not make this change, you can reset your password at https://www.{dom}/security.</p></body></html>"
        );
        let alt = "Content-Type: multipart/alternative; boundary=\"a\"".to_string();
        let alt_body = format!(
            "--a\nContent-Type: text/plain; charset=utf-8\n\nThanks for your order. Your receipt is in your account at https://www.{dom}/orders\n--a\nContent-Type: text/html; charset=utf-8\n\n{receipt}\n--a--"
        );
        out.push((
            msg(
                &format!("\"{brand}\" <service@{dom}>"),
                None,
                "Your receipt",
                &alt,
                &alt_body,
            ),
            false,
        ));
        let work = WORK[i % WORK.len()];
        let (ct, body) = attachment(
            &format!("Hi team,\n\n{work}\n\nBest regards,\nSam"),
            [
                "sow.pdf",
                "minutes.docx",
                "q3.xlsx",
                "contract.pdf",
                "notes.txt",
            ][i % 5],
            "application/pdf",
        );
        out.push((
            msg(
                &format!("\"Sam Carter\" <sam.carter@firm{i}.com>"),
                Some(&format!("sam.carter@firm{i}.com")),
                "Re: project update",
                &ct,
                &body,
            ),
            false,
        ));
        let news = format!(
            "This week: {}\nRead more: https://{short}/news{i}\n\nYou are receiving this because you subscribed. Unsubscribe at https://news{i}.example.com/unsub",
            WORK[(i + 2) % WORK.len()]
        );
        out.push((
            msg(
                &format!("\"Team Updates\" <news@news{i}.example.com>"),
                None,
                "Weekly product update",
                "Content-Type: text/plain; charset=utf-8",
                &news,
            ),
            false,
        ));
        let reset = format!(
            "Hi,\n\nSomeone asked to reset your password. If it was you, use this link within one hour: https://accounts.{dom}/reset?t={i}\nIf not, you can ignore this email.\n\n{brand}"
        );
        out.push((
            msg(
                &format!("\"{brand}\" <no-reply@accounts.{dom}>"),
                None,
                "Reset your password",
                "Content-Type: text/plain; charset=utf-8",
                &reset,
            ),
            false,
        ));
    }
    out
}
