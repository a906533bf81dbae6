//! The notification email sent to a tenant's notification recipients when one of its accounts
//! (or connectors, or the whole tenant) is restricted. Format of
//! `seeds/000_71858b5a3dff1f62.txt` (EOP's sample), adapted: the restriction is lifted in the
//! Outguard admin portal or with `outguard restricted lift`, not by calling a vendor, and the
//! reason (limit, counts, top spam reasons) is spelled out. Built with mail-builder; the
//! Message-ID and Date come from the arguments so the output is reproducible (golden test).

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use outguard_types::model::Millis;

use crate::restriction::{RestrictionReason, Subject};

/// The subject line (exact, SPEC §3).
pub fn notification_subject(subject: &Subject) -> String {
    format!(
        "Outbound spam notification - {} blocked from sending outbound mail",
        subject.id()
    )
}

/// `"Name <addr>"` or `"addr"` → (name, address).
pub fn parse_mailbox(s: &str) -> (Option<String>, String) {
    let s = s.trim();
    match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => {
            let name = s[..i].trim().trim_matches('"').trim();
            let addr = s[i + 1..s.len() - 1].trim();
            (
                (!name.is_empty()).then(|| name.to_string()),
                addr.to_string(),
            )
        }
        _ => (None, s.to_string()),
    }
}

/// `YYYY-MM-DD HH:MM UTC` (civil-from-days, proleptic Gregorian).
pub fn format_utc(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        sod / 3600,
        (sod % 3600) / 60
    )
}

fn reason_lines(subject: &Subject, reason: &RestrictionReason, until: Option<Millis>) -> String {
    let mut s = format!(
        "Reason: {} reached {}.\r\n",
        subject.id(),
        reason.limit.describe()
    );
    for m in &reason.counts {
        s.push_str(&format!("  - {m}\r\n"));
    }
    if !reason.top_spam_reasons.is_empty() {
        s.push_str(&format!(
            "Top spam reasons: {}\r\n",
            reason.top_spam_reasons.join(", ")
        ));
    }
    if !reason.sample_message_ids.is_empty() {
        s.push_str(&format!(
            "Sample messages: {}\r\n",
            reason.sample_message_ids.join(", ")
        ));
    }
    match until {
        Some(u) => s.push_str(&format!(
            "Blocked until: {} (or until lifted)\r\n",
            format_utc(u)
        )),
        None => s.push_str("Blocked until: an administrator lifts the restriction\r\n"),
    }
    s
}

/// The message text (CRLF line ends).
pub fn notification_body(
    subject: &Subject,
    reason: &RestrictionReason,
    until: Option<Millis>,
    max_unblocks_per_day: u32,
) -> String {
    let (who, lift) = match subject {
        Subject::Tenant(t) => (
            format!("All accounts and connectors of the organisation {t} have been blocked from sending email (they can still receive email):"),
            "2. Ask your service operator to lift the restriction: a restricted organisation can only be lifted by an operator, in the Outguard admin portal or with `outguard restricted lift`.".to_string(),
        ),
        Subject::Connector(_) => (
            "The following connector has been blocked from sending email:".to_string(),
            format!("2. Lift the restriction in the Outguard admin portal (Restricted users) or with `outguard restricted lift {} --reason TEXT`.", subject.id()),
        ),
        Subject::Account(_) => (
            "The following email accounts have been blocked from sending email (they can still receive email):".to_string(),
            format!("2. Lift the restriction in the Outguard admin portal (Restricted users) or with `outguard restricted lift {} --reason TEXT`.", subject.id()),
        ),
    };
    let lines = [
        "This is an automated reply from the Outguard outbound spam analysis system.".to_string(),
        String::new(),
        format!("You are being contacted because we have detected high volumes of email marked as spam, or other suspicious behavior, originating from your organization. {who}"),
        String::new(),
        format!("    {}", subject.id()),
        String::new(),
        reason_lines(subject, reason, until).trim_end().to_string(),
        String::new(),
        "It is likely that this email account has been compromised. Please follow these steps:".into(),
        String::new(),
        "1. Resolve this issue on your side by:".into(),
        "   - Changing the password of the account.".into(),
        "   - Determining how the account was compromised.".into(),
        "   - Taking precautions to ensure that this vulnerability will not be exploited again.".into(),
        "   - Confirming that your outbound mail queue has been cleared of all offending messages (`outguard queue list --state held`, then `outguard queue delete` or `outguard queue release`).".into(),
        String::new(),
        lift,
        String::new(),
        "3. Give the reason when you lift it: explain that the account was blocked from sending mail and that the problem has been dealt with. The lift is recorded with your name, the time and the reason.".into(),
        String::new(),
        format!("4. The restriction ends at once. The account will not be restricted again by the same limit today; each account can be lifted at most {max_unblocks_per_day} times per day."),
        String::new(),
        "5. Messages held while the account was blocked stay held until you release or delete them.".into(),
        String::new(),
        "Thank you for assisting us in controlling unwanted email.".into(),
        String::new(),
        "Outguard Outbound Spam Protection.".into(),
        String::new(),
        "**NOTE - Please do not respond to this email as it is sent from an unmonitored address**".into(),
        String::new(),
    ];
    lines.join("\r\n")
}

/// Everything a notification needs besides the restriction.
#[derive(Debug, Clone, Copy)]
pub struct NotificationEnvelope<'a> {
    /// Our hostname (default From, Message-ID).
    pub hostname: &'a str,
    /// `[notifications] from`; None = `Outguard <postmaster@HOSTNAME>`.
    pub from: Option<&'a str>,
    pub to: &'a [String],
    pub max_unblocks_per_day: u32,
}

/// The RFC 5322 notification message.
pub fn render_notification(
    subject: &Subject,
    reason: &RestrictionReason,
    until: Option<Millis>,
    env: &NotificationEnvelope<'_>,
    now: Millis,
) -> Vec<u8> {
    let default_from = format!("Outguard <postmaster@{}>", env.hostname);
    let (name, addr) = parse_mailbox(env.from.unwrap_or(&default_from));
    let from: mail_builder::headers::address::Address<'_> = match name {
        Some(n) => (n, addr).into(),
        None => addr.into(),
    };
    let to: Vec<mail_builder::headers::address::Address<'_>> =
        env.to.iter().map(|a| a.as_str().into()).collect();
    let token: String = subject
        .id()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect();
    let message_id = format!("outguard-notify.{now}.{token}@{}", env.hostname);
    let subject_line = notification_subject(subject);
    let body = notification_body(subject, reason, until, env.max_unblocks_per_day);
    let mut builder = MessageBuilder::new().from(from).to(to);
    // Plain ASCII goes out as is, so the subject and sentences stay greppable; anything else
    // (an SMTPUTF8 address) is left to mail-builder's encoded words and quoted-printable.
    builder = if subject_line.is_ascii() && subject_line.len() < 900 {
        builder.header("Subject", Raw::new(subject_line))
    } else {
        builder.subject(subject_line)
    };
    builder = builder
        .date(now.div_euclid(1000))
        .message_id(message_id)
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .header("X-Outguard-Notification", Raw::new("user_restricted"));
    builder = if body.is_ascii() && body.split("\r\n").all(|l| l.len() < 990) {
        builder.body(
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "us-ascii"),
                body,
            )
            .transfer_encoding("7bit"),
        )
    } else {
        builder.text_body(body)
    };
    builder.write_to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_mailboxes() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_795_478_400_000), "2026-11-24 00:00 UTC");
        assert_eq!(
            format_utc(951_782_400_000 + 3_723_000),
            "2000-02-29 01:02 UTC"
        );
        assert_eq!(
            parse_mailbox("Outguard <postmaster@h.example>"),
            (Some("Outguard".into()), "postmaster@h.example".into())
        );
        assert_eq!(
            parse_mailbox("\"Ops Team\" <ops@h>"),
            (Some("Ops Team".into()), "ops@h".into())
        );
        assert_eq!(parse_mailbox("ops@h"), (None, "ops@h".into()));
    }
}
