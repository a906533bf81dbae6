//! Certificates for loopback TLS peers (rcgen): a self-signed one for sinks that offer STARTTLS
//! (clients delivering to MX hosts do not verify certificates, so a throwaway one is enough),
//! and a throwaway certificate authority ([`TestCa`]) for peers whose clients do verify
//! (https webhooks): the test hands the CA's PEM to the client as its trusted root.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

pub(crate) fn self_signed_config(hostname: &str) -> Result<Arc<ServerConfig>, String> {
    let ck = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| e.to_string())?;
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    server_config(vec![cert], key)
}

/// A self-signed certificate for `name` and its private key, both PEM (the `[tls] cert` and
/// `key` files of a test's config).
pub fn self_signed_pem(name: &str) -> Result<(String, String), String> {
    let ck =
        rcgen::generate_simple_self_signed(vec![name.to_string()]).map_err(|e| e.to_string())?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

/// A certificate authority made for one test: it signs server certificates for loopback peers,
/// and its [`TestCa::pem`] is what the client under test is told to trust.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA called `name` (its subject CN).
    pub fn new(name: &str) -> Result<TestCa, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(|e| e.to_string())?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server config presenting a certificate for `names` (DNS names or IP literals) signed
    /// by this CA, with the CA certificate in the chain.
    pub fn server_config(&self, names: &[&str]) -> Result<Arc<ServerConfig>, String> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).map_err(|e| e.to_string())?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let leaf = params
            .signed_by(&key, &*self.issuer)
            .map_err(|e| e.to_string())?;
        let chain = vec![leaf.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        server_config(chain, key)
    }
}
