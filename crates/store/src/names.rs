//! Normalising and checking the names users type: tenant names, domains, addresses, send-as
//! targets. Domains and addresses are stored lowercased so lookups are exact matches.

use crate::error::StoreError;

/// Tenant names: 1–64 of `A-Z a-z 0-9 . _ -`, kept as typed.
pub(crate) fn tenant(name: &str) -> Result<&str, StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(StoreError::invalid(format!(
            "tenant name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"
        )))
    }
}

/// A DNS domain name, lowercased, without a trailing dot.
pub(crate) fn domain(input: &str) -> Result<String, StoreError> {
    let d = input.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if d.len() <= 253 && d.contains('.') && d.split('.').all(label_ok) {
        Ok(d)
    } else {
        Err(StoreError::invalid(format!(
            "{input:?} is not a domain name"
        )))
    }
}

/// `local@domain`, lowercased; returns the address and its domain.
pub(crate) fn address(input: &str) -> Result<(String, String), StoreError> {
    let bad = || StoreError::invalid(format!("{input:?} is not an email address"));
    let (local, dom) = input.trim().rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@'));
    if !local_ok {
        return Err(bad());
    }
    let dom = domain(dom).map_err(|_| bad())?;
    Ok((format!("{}@{dom}", local.to_lowercase()), dom))
}

/// A send-as grant: an address, or `@domain` for a whole domain. Returns the normalised target
/// and the domain it lies in.
pub(crate) fn send_as_target(input: &str) -> Result<(String, String), StoreError> {
    match input.trim().strip_prefix('@') {
        Some(d) => {
            let d = domain(d)?;
            Ok((format!("@{d}"), d))
        }
        None => address(input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(domain("Example.COM.").unwrap(), "example.com");
        assert!(domain("localhost").is_err());
        assert!(domain("a..b").is_err());
        assert!(domain("-a.b").is_err());
        assert_eq!(
            address("Bob@Example.com").unwrap(),
            ("bob@example.com".into(), "example.com".into())
        );
        assert!(address("bob").is_err());
        assert!(address("@example.com").is_err());
        assert!(address("a b@example.com").is_err());
        assert_eq!(send_as_target("@Ex.org").unwrap().0, "@ex.org");
        assert!(tenant("acme-1").is_ok());
        assert!(tenant("").is_err());
        assert!(tenant("a b").is_err());
    }
}
