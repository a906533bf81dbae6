//! SASL PLAIN (RFC 4616) and LOGIN decoding for SMTP AUTH. Only decoding: verifying the
//! credentials is the store's job.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub authzid: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed PLAIN response")]
    Malformed,
    #[error("credentials are not valid UTF-8 or contain control characters")]
    Encoding,
}

pub fn decode_b64(s: &str) -> Result<Vec<u8>, SaslError> {
    STANDARD.decode(s.trim()).map_err(|_| SaslError::Base64)
}

pub fn encode_b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// A decoded field must be UTF-8 with no control characters: it ends up in logs, traces and
/// (for the identity) headers, so CR/LF/NUL are refused outright.
fn clean(b: &[u8]) -> Result<String, SaslError> {
    let s = std::str::from_utf8(b).map_err(|_| SaslError::Encoding)?;
    if s.chars().any(|c| c.is_control()) {
        return Err(SaslError::Encoding);
    }
    Ok(s.to_string())
}

/// `authzid NUL authcid NUL passwd`, base64.
pub fn decode_plain(b64: &str) -> Result<Credentials, SaslError> {
    let raw = decode_b64(b64)?;
    let mut parts = raw.split(|&b| b == 0);
    let (Some(a), Some(u), Some(p), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let username = clean(u)?;
    if username.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        authzid: clean(a)?,
        username,
        password: clean(p)?,
    })
}

pub fn decode_login_field(b64: &str) -> Result<String, SaslError> {
    clean(&decode_b64(b64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let c = decode_plain(&encode_b64(b"\0alice@a.example\0s3cret")).unwrap();
        assert_eq!(c.username, "alice@a.example");
        assert_eq!(c.password, "s3cret");
        assert_eq!(decode_plain("!!"), Err(SaslError::Base64));
        assert_eq!(
            decode_plain(&encode_b64(b"only-one")),
            Err(SaslError::Malformed)
        );
        assert_eq!(
            decode_plain(&encode_b64(b"\0a\r\nb\0p")),
            Err(SaslError::Encoding)
        );
    }
}
