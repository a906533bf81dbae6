//! The files a configuration names, checked the way `serve` will read them, before it creates
//! anything (issue 20: `check-config` said `ok` for a missing certificate and DKIM key, and
//! `serve` failed on them only after creating its data directory).
//!
//! The only I/O in this crate: each file is opened and read (they are small PEM files and the
//! spam model); nothing is created or written. What cannot be judged without the crates that
//! use the files (a key that does not match its certificate, a corrupt model) is still found
//! by `serve` when it loads them.

use std::path::Path;

use super::Config;
use super::problems::Problems;

impl Config {
    /// Problems with the files `serve` loads: the TLS certificate chain and key, every DKIM
    /// key, the spam model, the webhooks' extra roots, and a data_dir that is not a directory.
    pub(super) fn check_files(&self, p: &mut Problems) {
        if let Some(cert) = &self.tls.cert {
            check_pem(p, "tls.cert", cert, Pem::Certificate);
        }
        if let Some(key) = &self.tls.key {
            check_pem(p, "tls.key", key, Pem::PrivateKey);
        }
        for (i, d) in self.dkim.iter().enumerate() {
            check_pem(p, &format!("dkim[{i}].key"), &d.key, Pem::PrivateKey);
        }
        if let Some(model) = &self.spam.model
            && let Err(m) = readable_file(model)
        {
            p.add("spam.model", m);
        }
        if let Some(ca) = &self.delivery.tls_ca_file {
            check_pem(p, "delivery.tls_ca_file", ca, Pem::Certificate);
        }
        for (i, r) in self.routes.iter().enumerate() {
            if let Some(file) = &r.auth_password_file
                && let Err(m) = readable_file(file)
            {
                p.add(format!("routes[{i}].auth_password_file"), m);
            }
        }
        if let Some(roots) = &self.webhooks.extra_roots {
            check_pem(p, "webhooks.extra_roots", roots, Pem::Certificate);
        }
        let dir = &self.server.data_dir;
        if dir.exists() && !dir.is_dir() {
            p.add(
                "server.data_dir",
                format!("{} exists and is not a directory", dir.display()),
            );
        }
    }
}

#[derive(Clone, Copy)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// A regular file that can be opened for reading.
fn readable_file(path: &Path) -> Result<(), String> {
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), plain(&e)))?;
    match f.metadata() {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("cannot read {}: {}", path.display(), plain(&e))),
    }
}

/// A readable file holding at least one PEM block of the kind `serve` will look for.
fn check_pem(p: &mut Problems, key: &str, path: &Path, kind: Pem) {
    if let Err(m) = readable_file(path) {
        p.add(key, m);
        return;
    }
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            p.add(
                key,
                format!("cannot read {}: {}", path.display(), plain(&e)),
            );
            return;
        }
    };
    // PEM labels: CERTIFICATE; PRIVATE KEY (PKCS#8), RSA PRIVATE KEY, EC PRIVATE KEY.
    let (found, what) = match kind {
        Pem::Certificate => (
            text.contains("-----BEGIN CERTIFICATE-----"),
            "PEM certificate",
        ),
        Pem::PrivateKey => (
            text.lines()
                .any(|l| l.starts_with("-----BEGIN ") && l.ends_with("PRIVATE KEY-----")),
            "PEM private key",
        ),
    };
    if !found {
        p.add(key, format!("{} holds no {what}", path.display()));
    }
}

/// What went wrong, in the words an operator expects for the usual cases.
fn plain(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
