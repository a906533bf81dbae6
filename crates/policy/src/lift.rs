//! Lifting restrictions (SPEC §3), the pure half: which subject an address names, whose queued
//! mail belongs to a subject, the rules for lifting all of one subject's active restrictions at
//! once (checked before anything is written), and the audit entry's target and detail. Reading
//! the records and writing the lifts and the audit are the caller's (`outguard_relay::enforce::
//! lift`, used by the CLI and the admin API).

use ipnet::IpNet;
use outguard_types::model::{Millis, Role, Submitter};

use crate::restriction::{LiftRefused, Restriction, Subject, check_lift, lift};

/// `user@domain` → account; an IP or CIDR → connector (normalised like the store does);
/// anything else → tenant.
pub fn parse_subject(s: &str) -> Subject {
    let s = s.trim();
    if s.contains('@') {
        return Subject::Account(s.to_string());
    }
    let net = s
        .parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from));
    match net {
        Some(n) => Subject::Connector(n.trunc().to_string()),
        None => Subject::Tenant(s.to_string()),
    }
}

/// Whether mail submitted by `submitter` in `tenant` is the subject's.
pub fn sent_by(subject: &Subject, submitter: &Submitter, tenant: Option<&str>) -> bool {
    match subject {
        Subject::Account(a) => {
            matches!(submitter, Submitter::Account(x) if x.eq_ignore_ascii_case(a))
        }
        Subject::Connector(c) => matches!(submitter, Submitter::Connector(x) if x == c),
        Subject::Tenant(t) => tenant == Some(t.as_str()),
    }
}

/// The lifted records of every restriction in `active` (all of one subject), after
/// [`check_lift`] allowed each — counting each as one more lift today — or the first refusal,
/// so a refusal leaves nothing half-lifted.
pub fn lift_each(
    active: &[&Restriction],
    role: Role,
    done_today: u32,
    max_unblocks_per_day: u32,
    actor: &str,
    reason: &str,
    now: Millis,
) -> Result<Vec<Restriction>, LiftRefused> {
    for (i, r) in active.iter().enumerate() {
        let done = done_today.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
        check_lift(r, role, done, max_unblocks_per_day, reason, now)?;
    }
    Ok(active.iter().map(|r| lift(r, actor, reason, now)).collect())
}

/// The `restricted.lift` audit entry's target and detail. Account addresses compare
/// case-insensitively; the audit names them in lower case.
pub fn lift_audit(subject: &Subject, ids: &[&str], reason: &str) -> (String, String) {
    let target = match subject {
        Subject::Account(a) => a.to_ascii_lowercase(),
        other => other.id().to_string(),
    };
    let detail = format!("{} (restrictions {})", reason.trim(), ids.join(", "));
    (target, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_from_what_users_type() {
        assert_eq!(
            parse_subject(" Bob@A.example "),
            Subject::Account("Bob@A.example".into())
        );
        assert_eq!(
            parse_subject("192.0.2.7/24"),
            Subject::Connector("192.0.2.0/24".into())
        );
        assert_eq!(
            parse_subject("192.0.2.7"),
            Subject::Connector("192.0.2.7/32".into())
        );
        assert_eq!(parse_subject("acme"), Subject::Tenant("acme".into()));
    }

    #[test]
    fn whose_mail_is_whose() {
        let bob = Subject::Account("bob@a.example".into());
        assert!(sent_by(
            &bob,
            &Submitter::Account("BOB@a.example".into()),
            Some("a")
        ));
        assert!(!sent_by(&bob, &Submitter::System, Some("a")));
        let a = Subject::Tenant("a".into());
        assert!(sent_by(&a, &Submitter::System, Some("a")));
        assert!(!sent_by(
            &a,
            &Submitter::Account("x@b.example".into()),
            Some("b")
        ));
        let c = Subject::Connector("192.0.2.0/24".into());
        assert!(sent_by(
            &c,
            &Submitter::Connector("192.0.2.0/24".into()),
            None
        ));
    }

    #[test]
    fn audit_names_accounts_in_lower_case() {
        let (t, d) = lift_audit(
            &Subject::Account("Bob@A.example".into()),
            &["r1", "r2"],
            " reset ",
        );
        assert_eq!(t, "bob@a.example");
        assert_eq!(d, "reset (restrictions r1, r2)");
    }
}
