//! TLS for the listeners: the configured PEM certificate, or a self-signed one generated into
//! `data_dir` on first start (SPEC §6) so STARTTLS and implicit TLS work with zero setup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use outguard_types::config::Config;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Install the ring crypto provider once per process (rustls needs one chosen explicitly).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Paths of the certificate and key in use, generating the self-signed pair if needed.
pub fn cert_paths(cfg: &Config) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let (Some(c), Some(k)) = (&cfg.tls.cert, &cfg.tls.key) {
        return Ok((c.clone(), k.clone()));
    }
    let dir = cfg.server.data_dir.join("tls");
    let cert = dir.join("selfsigned.crt");
    let key = dir.join("selfsigned.key");
    if !cert.exists() || !key.exists() {
        outguard_store::files::create_private_dir_all(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let names = vec![cfg.server.hostname.clone(), "localhost".to_string()];
        let ck = rcgen::generate_simple_self_signed(names)
            .context("generating a self-signed certificate")?;
        write_private(&key, ck.signing_key.serialize_pem().as_bytes())?;
        write_private(&cert, ck.cert.pem().as_bytes())?;
        tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    }
    Ok((cert, key))
}

/// Owner-only, like everything in data_dir (SPEC §9 "Files").
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = outguard_store::files::private_options();
    opts.write(true).create(true).truncate(true);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// The rustls server configuration for STARTTLS and implicit TLS.
pub fn server_config(cfg: &Config) -> anyhow::Result<Arc<ServerConfig>> {
    install_provider();
    let (cert, key) = cert_paths(cfg)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("reading key {}", key.display()))?;
    let sc = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(Arc::new(sc))
}

/// The configured certificate and key as `serve` loads them: each parses, and the key is the
/// certificate's (rustls compares the key's public half with the certificate's). Nothing is
/// generated: without both paths there is nothing to check.
pub fn check(cfg: &Config) -> Vec<(String, String)> {
    let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) else {
        return Vec::new();
    };
    install_provider();
    let certs: Result<Vec<CertificateDer<'static>>, _> =
        CertificateDer::pem_file_iter(cert).and_then(Iterator::collect);
    let certs = match certs {
        Ok(c) if !c.is_empty() => Some(c),
        Ok(_) => {
            let why = format!("{} holds no certificate", cert.display());
            return vec![("tls.cert".into(), why)];
        }
        Err(e) => {
            let why = format!("{} is not a readable PEM certificate: {e}", cert.display());
            return vec![("tls.cert".into(), why)];
        }
    };
    let key_der = match PrivateKeyDer::from_pem_file(key) {
        Ok(k) => k,
        Err(e) => {
            let why = format!("{} is not a readable PEM private key: {e}", key.display());
            return vec![("tls.key".into(), why)];
        }
    };
    match ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs.unwrap_or_default(), key_der)
    {
        Ok(_) => Vec::new(),
        Err(e) => vec![(
            "tls.key".into(),
            format!(
                "{} does not match the certificate in tls.cert ({}): {e}",
                key.display(),
                cert.display()
            ),
        )],
    }
}

/// The listeners' TLS acceptor, replaceable while the relay runs (SIGHUP reloads the
/// certificate): a session takes the acceptor in force when it starts TLS; sessions already
/// encrypted keep theirs.
#[derive(Default)]
pub struct ServerTls(std::sync::RwLock<Option<tokio_rustls::TlsAcceptor>>);

impl ServerTls {
    pub fn new(acceptor: Option<tokio_rustls::TlsAcceptor>) -> ServerTls {
        ServerTls(std::sync::RwLock::new(acceptor))
    }

    /// The acceptor in force now (a cheap clone of an `Arc`).
    pub fn current(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn is_available(&self) -> bool {
        self.current().is_some()
    }

    /// Load the certificate and key `cfg` names (or the self-signed pair) and put them in force.
    pub fn reload(&self, cfg: &Config) -> anyhow::Result<()> {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(cfg)?);
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(acceptor);
        Ok(())
    }
}
