//! TLS for outbound delivery. Opportunistic STARTTLS to MX hosts does not verify certificates
//! (RFC 7435: encryption without authentication beats plaintext; MX certificates are very often
//! self-signed or name the wrong host). The `verify` policy (issue 21) uses a verifying config:
//! the chain must lead to a trusted root (`[delivery] tls_ca_file`, else the system's roots) and
//! name the MX host. MTA-STS (`mta_sts`) checks its policy fetch with the same verifier, and
//! its `testing` mode uses a [`recording_client_config`]: it accepts every certificate as
//! opportunistic TLS does and writes down what `verify` would have said.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why the verifying config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{0} holds no CA certificate")]
    NoCa(std::path::PathBuf),
    #[error("no system trust roots could be loaded")]
    NoSystemRoots,
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// The CAs in `ca_file` (PEM), or the system's trust roots when there is none.
fn trust_roots(
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<rustls::RootCertStore>, TlsSetupError> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|source| TlsSetupError::CaFile {
                    path: path.to_path_buf(),
                    source,
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TlsSetupError::NoCa(path.to_path_buf()));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(TlsSetupError::NoSystemRoots);
            }
        }
    }
    Ok(Arc::new(roots))
}

/// What the `verify` policy checks a certificate with (chain to `ca_file` or the system's
/// roots, and the host name); also used by MTA-STS, for its HTTPS fetch and its `testing` mode.
pub fn verifier(
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<WebPkiServerVerifier>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiServerVerifier::builder_with_provider(trust_roots(ca_file)?, provider)
        .build()
        .map_err(|e| TlsSetupError::Rustls(rustls::Error::General(e.to_string())))
}

/// Client config for the `verify` policy: chain and host name checked against the CAs in
/// `ca_file` (PEM), or the system's trust roots when there is none.
pub fn verifying_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    Ok(verifier_client_config(verifier(ca_file)?)?)
}

/// Client config that checks certificates with `verifier` (the `verify` policy's).
pub fn verifier_client_config(
    verifier: Arc<WebPkiServerVerifier>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What a [`Recording`] verifier found: per server name, why its certificate would have been
/// refused (`None`: it would have passed).
pub type Findings = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

/// Accepts every certificate, as opportunistic TLS does, but checks it with the `verify`
/// verifier and writes down the outcome: MTA-STS `testing` mode reports what `enforce` would
/// have refused without refusing it.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    accept: AcceptAny,
    findings: Findings,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .err()
            .map(|e| e.to_string());
        self.findings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((server_name.to_str().into_owned(), outcome));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.accept.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.accept.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.accept.supported_verify_schemes()
    }
}

/// Client config that accepts any certificate (opportunistic) and records in `findings`
/// whether `verifier` would have accepted it.
pub fn recording_client_config(
    verifier: Arc<WebPkiServerVerifier>,
    findings: Findings,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recording = Recording {
        inner: verifier,
        accept: AcceptAny(provider.clone()),
        findings,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(recording))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Client config for opportunistic STARTTLS (no certificate verification).
pub fn opportunistic_client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
