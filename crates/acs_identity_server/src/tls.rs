//! TLS: the development CA and certificate, and the rustls server configuration.
//!
//! On first start the service creates a local CA (`tls/ca.pem`) and a certificate for
//! `localhost`, `127.0.0.1` and `::1` signed by it; later starts reuse both. Clients
//! trust the CA through `SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE` or `NODE_EXTRA_CA_CERTS`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use time::{Duration, OffsetDateTime};

/// Paths of the certificate and key to serve, and of the CA that signed them (if ours).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
    /// The development CA, when the certificate is the development one.
    pub ca: Option<PathBuf>,
}

/// Makes sure the development CA and certificate exist in `dir`; returns their paths.
pub fn ensure_dev_certificate(dir: &Path, now: OffsetDateTime) -> anyhow::Result<TlsFiles> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server-key.pem");
    let files =
        TlsFiles { cert: cert_path.clone(), key: key_path.clone(), ca: Some(ca_path.clone()) };
    if ca_path.exists() && ca_key_path.exists() && cert_path.exists() && key_path.exists() {
        return Ok(files);
    }

    let (ca_pem, ca_key) = if ca_path.exists() && ca_key_path.exists() {
        let key =
            KeyPair::from_pem(&fs::read_to_string(&ca_key_path)?).context("unreadable CA key")?;
        (fs::read_to_string(&ca_path)?, key)
    } else {
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "acs-identity development CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key)?;
        write_secret(&ca_key_path, key.serialize_pem().as_bytes())?;
        fs::write(&ca_path, cert.pem())?;
        (cert.pem(), key)
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("unreadable CA certificate")?;

    let key = KeyPair::generate()?;
    let mut params = server_params(&["localhost"], now, 825)?;
    params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    let cert = params.signed_by(&key, &issuer)?;
    write_secret(&key_path, key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, format!("{}{}", cert.pem(), ca_pem))?;
    Ok(files)
}

/// A server certificate's parameters for `hosts` (the first is its common name), valid from a
/// day before `now` for `days` days.
fn server_params(
    hosts: &[&str],
    now: OffsetDateTime,
    days: i64,
) -> anyhow::Result<CertificateParams> {
    let mut params =
        CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, hosts.first().copied().unwrap_or("localhost"));
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
    Ok(params)
}

/// A rustls configuration serving a certificate for `hosts`, issued (in memory, on every call)
/// by the development CA in `dir`, which [`ensure_dev_certificate`] created. The Entra proxy
/// uses it to answer for Entra's host names.
pub fn config_for_hosts(
    dir: &Path,
    hosts: &[&str],
    now: OffsetDateTime,
) -> anyhow::Result<Arc<ServerConfig>> {
    let ca_pem = fs::read_to_string(dir.join("ca.pem"))
        .with_context(|| format!("cannot read the development CA in {}", dir.display()))?;
    let ca_key = KeyPair::from_pem(&fs::read_to_string(dir.join("ca-key.pem"))?)
        .context("unreadable CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).context("unreadable CA certificate")?;
    let key = KeyPair::generate()?;
    let params = server_params(hosts, now, 30)?;
    let cert = params.signed_by(&key, &issuer)?;
    let ca_der = rustls_pemfile::certs(&mut ca_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("unreadable CA certificate")?;
    let chain = std::iter::once(cert.der().clone()).chain(ca_der).collect();
    let key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("cannot use the generated key: {e}"))?;
    config_with(chain, key)
}

pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// A rustls configuration serving `cert` with `key`, offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(
        &mut fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?.as_slice(),
    )
    .collect::<Result<_, _>>()
    .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(
        &mut fs::read(key).with_context(|| format!("cannot read {}", key.display()))?.as_slice(),
    )
    .with_context(|| format!("{} is not a PEM private key", key.display()))?
    .with_context(|| format!("{} holds no private key", key.display()))?;
    config_with(certs, key)
}

fn config_with(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificate_is_created_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let files = ensure_dev_certificate(dir.path(), now).unwrap();
        let first = fs::read(&files.cert).unwrap();
        server_config(&files.cert, &files.key).unwrap();
        let again = ensure_dev_certificate(dir.path(), now).unwrap();
        assert_eq!(fs::read(&again.cert).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
        // A lost leaf is re-issued by the same CA.
        fs::remove_file(&files.cert).unwrap();
        let ca_before = fs::read(dir.path().join("ca.pem")).unwrap();
        ensure_dev_certificate(dir.path(), now).unwrap();
        assert_eq!(fs::read(dir.path().join("ca.pem")).unwrap(), ca_before);
    }
}
