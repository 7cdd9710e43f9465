//! TLS for the web server: turns `tls_server_config` (exporter-toolkit's names and values)
//! into a rustls server configuration, with the certificates and keys already loaded.
//!
//! rustls speaks TLS 1.2 and 1.3 only, with AEAD cipher suites; the crypto provider is
//! aws-lc-rs (the one the AWS SDK uses, so there is one crypto library in the binary).
//! Certificates are not reloaded here: [`crate::web_config`] rebuilds the whole configuration
//! when a file changes, and each new connection takes the configuration then in force.

use super::setting::SettingError;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{aws_lc_rs, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `tls_server_config`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) client_ca: Option<String>,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) client_auth_type: Option<String>,
    pub(crate) client_ca_file: Option<String>,
    pub(crate) client_allowed_sans: Option<Vec<String>>,
    pub(crate) min_version: Option<String>,
    pub(crate) max_version: Option<String>,
    pub(crate) cipher_suites: Option<Vec<String>>,
    pub(crate) prefer_server_cipher_suites: Option<bool>,
    pub(crate) curve_preferences: Option<Vec<String>>,
}

impl TlsFile {
    /// Whether any TLS setting is present (exporter-toolkit's rule: then TLS is on and a
    /// certificate and key are required).
    pub(super) fn enabled(&self) -> bool {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
        set(&self.cert)
            || set(&self.key)
            || set(&self.cert_file)
            || set(&self.key_file)
            || set(&self.client_ca)
            || set(&self.client_ca_file)
            || set(&self.client_auth_type)
    }

    /// The files it names, relative paths resolved against `dir`.
    pub(super) fn files(&self, dir: &Path) -> Vec<PathBuf> {
        [&self.cert_file, &self.key_file, &self.client_ca_file]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .map(|p| dir.join(p))
            .collect()
    }
}

/// The crypto provider used for serving (and by the tests' clients).
pub fn provider() -> CryptoProvider {
    aws_lc_rs::default_provider()
}

/// TLS 1.2 suites by their Go (exporter-toolkit) names. TLS 1.3 suites are not configurable
/// there either.
const TLS12_SUITES: &[(&str, SupportedCipherSuite)] = {
    use aws_lc_rs::cipher_suite::*;
    &[
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
};

const TLS13_SUITE_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// `min_version` / `max_version`: TLS 1.0 and 1.1 exist in the format but not in rustls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

fn version(key: &str, value: Option<&str>, default: Version) -> Result<Version, SettingError> {
    match value.unwrap_or("") {
        "" => Ok(default),
        "TLS10" => Ok(Version::Tls10),
        "TLS11" => Ok(Version::Tls11),
        "TLS12" => Ok(Version::Tls12),
        "TLS13" => Ok(Version::Tls13),
        other => Err(SettingError::new(
            key,
            format!("unknown TLS version {other:?} (expected TLS12 or TLS13)"),
        )),
    }
}

fn versions(t: &TlsFile) -> Result<Vec<&'static SupportedProtocolVersion>, SettingError> {
    let min = version(
        "tls_server_config.min_version",
        t.min_version.as_deref(),
        Version::Tls12,
    )?;
    let max = version(
        "tls_server_config.max_version",
        t.max_version.as_deref(),
        Version::Tls13,
    )?;
    if max < Version::Tls12 {
        return Err(SettingError::new(
            "tls_server_config.max_version",
            "TLS 1.0 and 1.1 are not supported; the lowest version served is TLS12",
        ));
    }
    if min > max {
        return Err(SettingError::new(
            "tls_server_config.min_version",
            "is above max_version",
        ));
    }
    if min < Version::Tls12 {
        tracing::warn!(
            "tls_server_config.min_version is below TLS12; TLS 1.0 and 1.1 are never served"
        );
    }
    let mut out = Vec::new();
    if max == Version::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= Version::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

fn cipher_suites(
    names: &[String],
    provider: &CryptoProvider,
) -> Result<Vec<SupportedCipherSuite>, SettingError> {
    let mut suites: Vec<SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for name in names {
        if TLS13_SUITE_NAMES.contains(&name.as_str()) {
            continue;
        }
        let Some((_, suite)) = TLS12_SUITES.iter().find(|(n, _)| n == name) else {
            return Err(SettingError::new(
                "tls_server_config.cipher_suites",
                format!(
                    "{name:?} is not offered (TLS 1.2 suites available: {})",
                    TLS12_SUITES
                        .iter()
                        .map(|(n, _)| *n)
                        .filter(|n| n.ends_with("SHA256") || n.ends_with("SHA384"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if !suites.contains(suite) {
            suites.push(*suite);
        }
    }
    Ok(suites)
}

fn curves(
    names: &[String],
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, SettingError> {
    use aws_lc_rs::kx_group;
    names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(kx_group::X25519),
            "CurveP256" => Ok(kx_group::SECP256R1),
            "CurveP384" => Ok(kx_group::SECP384R1),
            _ => Err(SettingError::new(
                "tls_server_config.curve_preferences",
                format!("{name:?} is not offered (available: X25519, CurveP256, CurveP384)"),
            )),
        })
        .collect()
}

/// Reads PEM either inline (`inline_key`) or from a file (`file_key`), exactly one of them.
fn pem_source(
    inline: &Option<String>,
    file: &Option<String>,
    inline_key: &str,
    file_key: &str,
    dir: &Path,
) -> Result<Option<(Vec<u8>, String)>, SettingError> {
    let inline = inline.as_deref().filter(|s| !s.is_empty());
    let file = file.as_deref().filter(|s| !s.is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err(SettingError::new(
            format!("tls_server_config.{inline_key}"),
            format!("set either {inline_key} or {file_key}, not both"),
        )),
        (Some(text), None) => Ok(Some((
            text.as_bytes().to_vec(),
            format!("tls_server_config.{inline_key}"),
        ))),
        (None, Some(p)) => {
            let path = dir.join(p);
            let key = format!("tls_server_config.{file_key}");
            let bytes = std::fs::read(&path)
                .map_err(|e| SettingError::new(&key, format!("reading {}: {e}", path.display())))?;
            Ok(Some((bytes, key)))
        }
        (None, None) => Ok(None),
    }
}

fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>, SettingError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SettingError::new(key, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(SettingError::new(key, "no PEM certificate found"));
    }
    Ok(certs)
}

/// Accepts any client certificate without checking who issued it, but still checks that the
/// client holds its key (`RequestClientCert`, `RequireAnyClientCert`: insecure, as in Go).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier, the client certificate must carry one of
/// these subject alternative names exactly (DNS name, IP address or URI).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    fn matches(&self, end_entity: &CertificateDer<'_>) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        let dns: Vec<&str> = cert.valid_dns_names().collect();
        let uris: Vec<&str> = cert.valid_uri_names().collect();
        self.allowed.iter().any(|san| {
            if let Ok(ip) = san.parse::<std::net::IpAddr>() {
                return cert
                    .verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
                    .is_ok();
            }
            dns.contains(&san.as_str()) || uris.contains(&san.as_str())
        })
    }
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.matches(end_entity) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn client_verifier(
    t: &TlsFile,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, SettingError> {
    const KEY: &str = "tls_server_config.client_auth_type";
    let ca = pem_source(
        &t.client_ca,
        &t.client_ca_file,
        "client_ca",
        "client_ca_file",
        dir,
    )?;
    let roots = |ca: Option<(Vec<u8>, String)>| -> Result<Arc<RootCertStore>, SettingError> {
        let Some((pem, key)) = ca else {
            return Err(SettingError::new(
                KEY,
                "verifying client certificates needs client_ca_file (or client_ca)",
            ));
        };
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certificates(&pem, &key)?);
        if added == 0 {
            return Err(SettingError::new(key, "no usable CA certificate"));
        }
        Ok(Arc::new(roots))
    };
    let webpki = |roots: Arc<RootCertStore>, optional: bool| {
        let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map_err(|e| SettingError::new(KEY, format!("{e:?}")))
    };
    let any = |mandatory: bool| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let kind = t.client_auth_type.as_deref().unwrap_or("");
    let (verifier, mandatory) = match kind {
        "" | "NoClientCert" => {
            if ca.is_some() {
                return Err(SettingError::new(
                    KEY,
                    "a client CA is configured but client_auth_type does not ask for client \
                     certificates (use RequireAndVerifyClientCert)",
                ));
            }
            (WebPkiClientVerifier::no_client_auth(), false)
        }
        "RequestClientCert" => (any(false), false),
        "RequireAnyClientCert" | "RequireClientCert" => (any(true), true),
        "VerifyClientCertIfGiven" => (webpki(roots(ca)?, true)?, false),
        "RequireAndVerifyClientCert" => (webpki(roots(ca)?, false)?, true),
        other => {
            return Err(SettingError::new(
                KEY,
                format!(
                    "unknown value {other:?} (expected NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                ),
            ))
        }
    };
    match &t.client_allowed_sans {
        Some(allowed) if !allowed.is_empty() => {
            if !mandatory {
                return Err(SettingError::new(
                    "tls_server_config.client_allowed_sans",
                    "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
                ));
            }
            Ok(Arc::new(AllowedSans {
                inner: verifier,
                allowed: allowed.clone(),
            }))
        }
        _ => Ok(verifier),
    }
}

/// Builds the rustls configuration `tls_server_config` describes, loading every file it
/// names (relative paths against `dir`).
pub(crate) fn server_config(t: &TlsFile, dir: &Path) -> Result<Arc<ServerConfig>, SettingError> {
    let (cert_pem, cert_key) = pem_source(&t.cert, &t.cert_file, "cert", "cert_file", dir)?
        .ok_or_else(|| {
            SettingError::new("tls_server_config", "missing one of cert or cert_file")
        })?;
    let (key_pem, key_key) = pem_source(&t.key, &t.key_file, "key", "key_file", dir)?
        .ok_or_else(|| SettingError::new("tls_server_config", "missing one of key or key_file"))?;
    let chain = certificates(&cert_pem, &cert_key)?;
    // The parser's message could quote the key file: say only what was expected.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        SettingError::new(
            &key_key,
            "no PEM private key found (PKCS#8, PKCS#1 or SEC1 expected)",
        )
    })?;

    let mut provider = provider();
    if let Some(names) = t.cipher_suites.as_deref().filter(|n| !n.is_empty()) {
        provider.cipher_suites = cipher_suites(names, &provider)?;
    }
    if let Some(names) = t.curve_preferences.as_deref().filter(|n| !n.is_empty()) {
        provider.kx_groups = curves(names)?;
    }
    let provider = Arc::new(provider);
    let versions = versions(t)?;
    let verifier = client_verifier(t, dir, &provider)?;

    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| SettingError::new("tls_server_config", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            SettingError::new(
                &key_key,
                format!("does not go with the certificate in {cert_key}: {e}"),
            )
        })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_toolkit_names() {
        let t = |min: Option<&str>, max: Option<&str>| TlsFile {
            min_version: min.map(str::to_owned),
            max_version: max.map(str::to_owned),
            ..TlsFile::default()
        };
        assert_eq!(versions(&t(None, None)).unwrap().len(), 2);
        let only13 = versions(&t(Some("TLS13"), None)).unwrap();
        assert_eq!(only13, vec![&rustls::version::TLS13]);
        let only12 = versions(&t(None, Some("TLS12"))).unwrap();
        assert_eq!(only12, vec![&rustls::version::TLS12]);
        assert_eq!(versions(&t(Some("TLS10"), None)).unwrap().len(), 2);
        assert!(versions(&t(None, Some("TLS11"))).is_err());
        assert!(versions(&t(Some("TLS13"), Some("TLS12"))).is_err());
        let e = versions(&t(Some("SSL3"), None)).unwrap_err();
        assert_eq!(e.key, "tls_server_config.min_version");
    }

    #[test]
    fn cipher_suites_and_curves() {
        let p = provider();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s = cipher_suites(
            &names(&[
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_128_GCM_SHA256",
            ]),
            &p,
        )
        .unwrap();
        assert_eq!(
            s.iter()
                .filter(|s| s.version() == &rustls::version::TLS12)
                .count(),
            1
        );
        let e = cipher_suites(&names(&["TLS_RSA_WITH_AES_128_CBC_SHA"]), &p).unwrap_err();
        assert!(e.message.contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{e:?}");
        assert_eq!(curves(&names(&["X25519", "CurveP256"])).unwrap().len(), 2);
        assert!(curves(&names(&["CurveP521"])).is_err());
    }
}
