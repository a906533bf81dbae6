//! Certificates for loopback TLS peers (rcgen): a self-signed one for sinks that offer STARTTLS
//! (clients delivering to MX hosts do not verify certificates, so a throwaway one is enough),
//! and a throwaway certificate authority ([`TestCa`]) for peers whose clients do verify
//! (https webhooks): the test hands the CA's PEM to the client as its trusted root.
//! [`ServerCert`] also hands back what DANE TLSA records are made from (the chain, the
//! leaf's SubjectPublicKeyInfo).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
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

/// A server certificate: the config that presents it, and its parts for TLSA records.
pub struct ServerCert {
    pub config: Arc<ServerConfig>,
    /// Leaf first, then the issuing CA (when there is one).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's SubjectPublicKeyInfo, DER (what a `3 1 x` TLSA record hashes).
    pub spki: Vec<u8>,
}

/// A self-signed certificate for `names`, e.g. for a DANE-EE (`3 1 1`) MX host.
pub fn self_signed_cert(names: &[&str]) -> Result<ServerCert, String> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    let chain = vec![ck.cert.der().clone()];
    let spki = ck.signing_key.subject_public_key_info();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    Ok(ServerCert {
        config: server_config(chain.clone(), key)?,
        chain,
        spki,
    })
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
        Ok(self.server_cert(names)?.config)
    }

    /// [`TestCa::server_config`] with the certificate's parts.
    pub fn server_cert(&self, names: &[&str]) -> Result<ServerCert, String> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).map_err(|e| e.to_string())?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let leaf = params
            .signed_by(&key, &*self.issuer)
            .map_err(|e| e.to_string())?;
        let chain = vec![leaf.der().clone(), self.issuer.der().clone()];
        let spki = key.subject_public_key_info();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(ServerCert {
            config: server_config(chain.clone(), key)?,
            chain,
            spki,
        })
    }
}
