//! Header fields Outguard adds to a submission besides `Received:` (issue 21): `Date:` and
//! `Message-ID:` when the submitter left them out (RFC 6409 §8.3, §8.4: the MSA may add them,
//! and receivers score mail without them as spam), and who gets `X-Outguard-Verdict`
//! (`[delivery] verdict_header`: by default only the sender's own tenant, since the verdict
//! tells a stranger how our spam engine scored the mail).

use outguard_proto::header_fields::fields;
use outguard_types::config::VerdictHeader;

/// The name of the verdict field (`outguard_policy::disposition::VERDICT_HEADER`).
const VERDICT: &str = outguard_policy::disposition::VERDICT_HEADER;

/// The fields to put in front of `body` because it has no `Date:` / `Message-ID:` (empty when
/// it has both), and the Message-ID added, if one was. `now_s`: Unix seconds.
pub fn missing_date_and_id(
    body: &[u8],
    id: &str,
    hostname: &str,
    now_s: i64,
) -> (String, Option<String>) {
    let (mut date, mut mid) = (false, false);
    for f in fields(body) {
        date |= f.is("date");
        mid |= f.is("message-id");
    }
    let mut out = String::new();
    if !date {
        let d = mail_builder::headers::date::Date::new(now_s).to_rfc822();
        out.push_str(&format!("Date: {d}\r\n"));
    }
    let added = (!mid).then(|| {
        let host: String = hostname
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect();
        format!("<{id}@{host}>")
    });
    if let Some(m) = &added {
        out.push_str(&format!("Message-ID: {m}\r\n"));
    }
    (out, added)
}

/// The verdict field kept or dropped per `setting`, and the recipients the extra fields go to
/// (`None`: all): with `internal`, those in one of `tenant_domains`.
pub fn verdict_recipients(
    setting: VerdictHeader,
    mut extra: Vec<(String, String)>,
    rcpts: &[String],
    tenant_domains: &[String],
) -> (Vec<(String, String)>, Option<Vec<String>>) {
    let has_verdict = extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(VERDICT));
    match setting {
        _ if !has_verdict => (extra, None),
        VerdictHeader::All => (extra, None),
        VerdictHeader::None => {
            extra.retain(|(n, _)| !n.eq_ignore_ascii_case(VERDICT));
            (extra, None)
        }
        VerdictHeader::Internal => {
            let internal = rcpts
                .iter()
                .filter(|r| outguard_policy::rcpt::is_internal(r, tenant_domains))
                .cloned()
                .collect();
            (extra, Some(internal))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_only_what_is_missing() {
        let (h, id) = missing_date_and_id(b"Subject: x\r\n\r\nbody\r\n", "abc", "relay.test", 0);
        assert!(
            h.starts_with("Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"),
            "{h}"
        );
        assert!(h.ends_with("Message-ID: <abc@relay.test>\r\n"), "{h}");
        assert_eq!(id.as_deref(), Some("<abc@relay.test>"));
        let full = b"DATE: x\r\nmessage-id: <y@z>\r\n\r\nbody\r\n";
        assert_eq!(
            missing_date_and_id(full, "abc", "h", 0),
            (String::new(), None)
        );
        // A field in the body is no field.
        let (h, _) = missing_date_and_id(b"Subject: x\r\n\r\nDate: no\r\n", "a", "h", 0);
        assert!(h.starts_with("Date: "), "{h}");
    }

    #[test]
    fn verdict_goes_where_configured() {
        let extra = vec![(VERDICT.to_string(), "spam score=9".to_string())];
        let rcpts = vec!["in@a.example".to_string(), "out@x.example".to_string()];
        let domains = vec!["a.example".to_string()];
        let (e, to) = verdict_recipients(VerdictHeader::Internal, extra.clone(), &rcpts, &domains);
        assert_eq!(e, extra);
        assert_eq!(to, Some(vec!["in@a.example".to_string()]));
        let (e, to) = verdict_recipients(VerdictHeader::All, extra.clone(), &rcpts, &domains);
        assert_eq!((e, to), (extra.clone(), None));
        let (e, to) = verdict_recipients(VerdictHeader::None, extra, &rcpts, &domains);
        assert!(e.is_empty() && to.is_none());
    }
}
