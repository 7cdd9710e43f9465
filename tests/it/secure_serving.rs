//! Secure serving with real parts: the real binary with a `--web.config.file`, certificates
//! made here with rcgen (no committed keys), a rustls client and Debian's curl, and hostile
//! clients (plain HTTP on the TLS port, wrong passwords, wrong client CAs, old TLS versions,
//! slowloris, a thousand idle connections, oversized heads, endless keep-alive).
use crate::support::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TLS12: &SupportedProtocolVersion = &rustls::version::TLS12;
const TLS13: &SupportedProtocolVersion = &rustls::version::TLS13;

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate and its key, as PEM.
    fn issue(&self, names: &[&str], client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes a server certificate for localhost and 127.0.0.1 to `dir`.
    fn write_server_cert(&self, dir: &Path) {
        let (cert, key) = self.issue(&["localhost", "127.0.0.1"], false);
        replace_file(&dir.join("server.crt"), cert.as_bytes());
        replace_file(&dir.join("server.key"), key.as_bytes());
    }
}

/// A bcrypt hash (low cost: these are tests).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// A directory holding the web configuration and the files it names.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) {
        replace_file(&self.path(name), contents.as_bytes());
    }

    fn config(&self) -> String {
        self.path("web.yml").display().to_string()
    }

    /// Starts the exporter on the sample report with this site's web configuration.
    fn start(&self, extra: &[&str]) -> Exporter {
        let report = sample_report();
        let config = self.config();
        let mut args = vec![
            "--report.file",
            report.to_str().unwrap(),
            "--refresh.interval",
            "1h",
            "--web.config.file",
            config.as_str(),
        ];
        args.extend_from_slice(extra);
        Exporter::start(&args)
    }
}

/// How a test client connects over TLS.
struct Client {
    roots: String,
    identity: Option<(String, String)>,
    versions: Vec<&'static SupportedProtocolVersion>,
}

impl Client {
    fn trusting(ca: &Ca) -> Client {
        Client {
            roots: ca.pem.clone(),
            identity: None,
            versions: vec![TLS13, TLS12],
        }
    }

    fn with_identity(mut self, (cert, key): (String, String)) -> Client {
        self.identity = Some((cert, key));
        self
    }

    fn versions(mut self, versions: &[&'static SupportedProtocolVersion]) -> Client {
        self.versions = versions.to_vec();
        self
    }

    fn config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.roots.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(
            iam_credentials_exporter::serve::tls::provider(),
        ))
        .with_protocol_versions(&self.versions)
        .unwrap()
        .with_root_certificates(roots);
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        Arc::new(config)
    }

    /// GET `path` over TLS (a new connection, `Connection: close`); `Err` when the
    /// connection or the handshake fails before a response arrives.
    fn get(
        &self,
        addr: SocketAddr,
        path: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<Reply, String> {
        let conn = ClientConnection::new(self.config(), ServerName::try_from("localhost").unwrap())
            .map_err(|e| e.to_string())?;
        let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        let auth = credentials
            .map(|(u, p)| format!("Authorization: Basic {}\r\n", basic(u, p)))
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n");
        tls.write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A peer that closes without close_notify: keep what arrived.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e.to_string()),
        }
        parse_response(&raw).ok_or_else(|| format!("no HTTP response in {} bytes", raw.len()))
    }
}

/// `user:password` in base64, as in an `Authorization: Basic` header.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Parses one whole HTTP/1.1 response (status line, headers, body up to Content-Length).
fn parse_response(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw[end + 4..].to_vec();
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Reads one response from a keep-alive connection.
fn read_response(reader: &mut BufReader<TcpStream>) -> Option<Reply> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let mut reply = parse_response(&head)?;
    let length: usize = reply.header("content-length").unwrap_or("0").parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    reply.body = body;
    Some(reply)
}

/// Runs curl (Debian's) with a deadline; returns its exit code, stdout and stderr.
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = tool("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("running curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// curl arguments that reach `exporter` as https://localhost:PORT.
fn curl_target(exporter: &Exporter, path: &str) -> (String, String) {
    let port = exporter.addr.port();
    (
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}{path}"),
    )
}

/// The exporter's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Whether the server has closed `stream` (EOF or reset), without blocking.
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let closed = match stream.peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// A site with a CA, a server certificate and `web.yml` from `config`.
fn tls_site(config: &str) -> (Site, Ca) {
    let site = Site::new();
    let ca = Ca::new("test CA");
    ca.write_server_cert(site.dir.path());
    site.write("ca.crt", &ca.pem);
    site.write("web.yml", config);
    (site, ca)
}

#[test]
fn tls_and_basic_auth_with_a_rustls_client_and_curl() {
    let password = "correct horse battery staple";
    let (site, ca) = tls_site(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  prometheus: {}\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
         X-Content-Type-Options: nosniff\n",
        hash(password)
    ));
    let exporter = site.start(&["--log.level=debug"]);
    let addr = exporter.addr;
    let client = Client::trusting(&ca);

    // The rustls client: no credentials, a wrong password, then the right one.
    let anonymous = client.get(addr, "/metrics", None).unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic"),
        "{:?}",
        anonymous.headers
    );
    assert_eq!(anonymous.header("x-frame-options"), Some("deny"));
    let wrong = client
        .get(addr, "/metrics", Some(("prometheus", "Tr0ub4dor&3")))
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").is_some());
    let unknown = client
        .get(addr, "/metrics", Some(("root", password)))
        .unwrap();
    assert_eq!(unknown.status, 401);
    let good = wait_for(
        "the first report to be served",
        Duration::from_secs(20),
        || {
            let r = client
                .get(addr, "/metrics", Some(("prometheus", password)))
                .unwrap();
            (r.status != 200 || r.text().contains("aws_iam_users{")).then_some(r)
        },
    );
    assert_eq!(good.status, 200, "{}", good.text());
    assert!(good.text().contains("aws_iam_users{"));
    assert_eq!(good.header("x-content-type-options"), Some("nosniff"));

    // Everything but the health endpoints needs the password, unknown paths too (no probing).
    for path in ["/", "/nope", "/metrics?x=1"] {
        assert_eq!(client.get(addr, path, None).unwrap().status, 401, "{path}");
    }
    let healthy = client.get(addr, "/-/healthy", None).unwrap();
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.header("x-frame-options"), Some("deny"));
    wait_for("readiness", Duration::from_secs(20), || {
        (client.get(addr, "/-/ready", None).unwrap().status == 200).then_some(())
    });

    // curl, with the test CA.
    let ca_file = site.path("ca.crt").display().to_string();
    let (resolve, url) = curl_target(&exporter, "/metrics");
    let (code, out, err) = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        &ca_file,
        "-u",
        &format!("prometheus:{password}"),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!((code, out.as_str()), (0, "200"), "{err}");
    let (code, out, err) = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        &ca_file,
        "-u",
        "prometheus:nope",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("www-authenticate: basic"),
        "{out}"
    );
    // curl without the CA does not trust the server.
    let (code, _, err) = curl(&["--resolve", &resolve, &url]);
    assert_eq!(code, 60, "{err}");

    // Plain HTTP to the TLS port gets a plain 400, never metrics.
    let plain = get(&exporter.url("/metrics"));
    assert_eq!(plain.status, 400);
    assert!(plain.text().contains("HTTP request to an HTTPS server"));
    assert!(!plain.text().contains("aws_iam"));
    let (code, out, _) = curl(&[&exporter.url("/metrics")]);
    assert_eq!(code, 0);
    assert!(!out.contains("aws_iam"), "{out}");

    // Nothing secret in the log, even at debug level.
    let logs = exporter.logs();
    for secret in [password, &basic("prometheus", password), "Tr0ub4dor&3"] {
        assert!(!logs.contains(secret), "a secret reached the log:\n{logs}");
    }
    assert!(
        !logs.to_ascii_lowercase().contains("authorization"),
        "{logs}"
    );
    assert!(logs.contains("Basic authentication failed"), "{logs}");
}

#[test]
fn verified_credentials_are_cached() {
    // A realistic cost, so that the first check is measurable.
    let password = "cached";
    let (site, ca) = tls_site(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  prometheus: {}\n",
        bcrypt::hash(password, 13).unwrap()
    ));
    let exporter = site.start(&[]);
    let client = Client::trusting(&ca);
    let timed = || {
        let t = Instant::now();
        let r = client
            .get(exporter.addr, "/metrics", Some(("prometheus", password)))
            .unwrap();
        assert_eq!(r.status, 200);
        t.elapsed()
    };
    let first = timed();
    let later: Vec<Duration> = (0..5).map(|_| timed()).collect();
    let best_later = *later.iter().min().unwrap();
    eprintln!("first authenticated scrape {first:?}, later ones {later:?}");
    assert!(
        best_later * 3 < first,
        "the first check pays bcrypt ({first:?}); later ones should not ({later:?})"
    );
}

#[test]
fn client_certificates_from_another_ca_are_refused() {
    let (site, ca) = tls_site(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let exporter = site.start(&[]);
    let addr = exporter.addr;
    let good_identity = ca.issue(&["scraper.example"], true);
    let rogue = Ca::new("rogue CA");
    let rogue_identity = rogue.issue(&["scraper.example"], true);

    let ok = Client::trusting(&ca)
        .with_identity(good_identity.clone())
        .get(addr, "/metrics", None)
        .unwrap();
    assert_eq!(ok.status, 200);
    for versions in [&[TLS13][..], &[TLS12][..]] {
        let refused = Client::trusting(&ca)
            .versions(versions)
            .with_identity(rogue_identity.clone())
            .get(addr, "/metrics", None);
        assert!(
            refused.is_err(),
            "{versions:?}: a rogue client certificate was accepted"
        );
        let anonymous = Client::trusting(&ca)
            .versions(versions)
            .get(addr, "/metrics", None);
        assert!(
            anonymous.is_err(),
            "{versions:?}: no client certificate was accepted"
        );
    }

    // curl too.
    site.write("good.crt", &good_identity.0);
    site.write("good.key", &good_identity.1);
    site.write("rogue.crt", &rogue_identity.0);
    site.write("rogue.key", &rogue_identity.1);
    let ca_file = site.path("ca.crt").display().to_string();
    let (resolve, url) = curl_target(&exporter, "/-/healthy");
    let with = |name: &str| {
        curl(&[
            "--resolve",
            &resolve,
            "--cacert",
            &ca_file,
            "--cert",
            &site.path(&format!("{name}.crt")).display().to_string(),
            "--key",
            &site.path(&format!("{name}.key")).display().to_string(),
            &url,
        ])
    };
    let (code, out, err) = with("good");
    assert_eq!((code, out.as_str()), (0, "Healthy\n"), "{err}");
    let (code, out, err) = with("rogue");
    assert_ne!(code, 0, "curl with a rogue certificate got {out:?}");
    assert!(!out.contains("Healthy"), "{err}");
}

#[test]
fn client_allowed_sans_restrict_verified_clients() {
    let (site, ca) = tls_site(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
         client_allowed_sans: [prometheus.example, 10.0.0.7]\n",
    );
    let exporter = site.start(&[]);
    let get = |names: &[&str]| {
        Client::trusting(&ca)
            .with_identity(ca.issue(names, true))
            .get(exporter.addr, "/-/healthy", None)
    };
    assert_eq!(get(&["prometheus.example"]).unwrap().status, 200);
    assert_eq!(get(&["other.example", "10.0.0.7"]).unwrap().status, 200);
    assert!(get(&["other.example"]).is_err());
}

#[test]
fn old_tls_versions_are_refused() {
    let (site, _) =
        tls_site("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let exporter = site.start(&["--log.level=debug"]);
    let ca_file = site.path("ca.crt").display().to_string();
    let (resolve, url) = curl_target(&exporter, "/-/healthy");

    // curl asking for at most TLS 1.1 (with OpenSSL's security level lowered so that curl
    // really offers it): the server refuses the handshake.
    let (code, out, err) = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        &ca_file,
        "--tls-max",
        "1.1",
        "--ciphers",
        "DEFAULT@SECLEVEL=0",
        &url,
    ]);
    assert_eq!(code, 35, "TLS 1.1 was not refused: {out} {err}");
    wait_for(
        "the refused handshake in the log",
        Duration::from_secs(10),
        || {
            exporter
                .logs()
                .contains("TLS handshake failed")
                .then_some(())
        },
    );
    // TLS 1.2 and 1.3 work with the default settings.
    for max in ["1.2", "1.3"] {
        let (code, out, err) = curl(&[
            "--resolve",
            &resolve,
            "--cacert",
            &ca_file,
            "--tls-max",
            max,
            &url,
        ]);
        assert_eq!((code, out.as_str()), (0, "Healthy\n"), "TLS {max}: {err}");
    }

    // min_version TLS13 refuses a TLS 1.2-only client (rustls and curl).
    let (site13, ca13) = tls_site(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let strict = site13.start(&[]);
    let only12 = Client::trusting(&ca13)
        .versions(&[TLS12])
        .get(strict.addr, "/-/healthy", None);
    assert!(
        only12.is_err(),
        "a TLS 1.2 client got through min_version TLS13"
    );
    let ok = Client::trusting(&ca13)
        .versions(&[TLS13])
        .get(strict.addr, "/-/healthy", None);
    assert_eq!(ok.unwrap().status, 200);
    let ca13_file = site13.path("ca.crt").display().to_string();
    let (resolve, url) = curl_target(&strict, "/-/healthy");
    let (code, _, err) = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        &ca13_file,
        "--tls-max",
        "1.2",
        &url,
    ]);
    assert_eq!(code, 35, "{err}");

    // max_version TLS12 refuses a TLS 1.3-only client.
    let (site12, ca12) = tls_site(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  max_version: TLS12\n",
    );
    let capped = site12.start(&[]);
    assert!(Client::trusting(&ca12)
        .versions(&[TLS13])
        .get(capped.addr, "/-/healthy", None)
        .is_err());
    assert_eq!(
        Client::trusting(&ca12)
            .versions(&[TLS12])
            .get(capped.addr, "/-/healthy", None)
            .unwrap()
            .status,
        200
    );
}

/// Trickles a request head one byte per 100 ms until the server hangs up; returns how long
/// that took. Meanwhile `scrape` must keep succeeding.
fn trickle_until_cut(addr: SocketAddr, opening: &[u8], scrape: impl Fn()) -> Duration {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(opening).unwrap();
    let started = Instant::now();
    loop {
        if s.write_all(b"X").is_err() || closed_by_server(&s) {
            return started.elapsed();
        }
        scrape();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a trickling client was not cut off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slowloris_is_cut_off_while_scrapes_succeed() {
    // Plain HTTP: a request head trickled byte by byte.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    std::fs::copy(sample_report(), &report).unwrap();
    let exporter = Exporter::start(&[
        "--report.file",
        report.to_str().unwrap(),
        "--web.header-read-timeout=1s",
    ]);
    let scrape = || assert_eq!(get(&exporter.url("/metrics")).status, 200);
    let cut = trickle_until_cut(
        exporter.addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        scrape,
    );
    eprintln!("plain HTTP slowloris cut after {cut:?}");
    assert!(
        cut >= Duration::from_millis(800) && cut < Duration::from_secs(4),
        "{cut:?}"
    );

    // TLS: a handshake trickled byte by byte (a TLS record header, then a body that never ends).
    let (site, ca) =
        tls_site("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let tls = site.start(&["--web.header-read-timeout=1s"]);
    let client = Client::trusting(&ca);
    let scrape = || {
        assert_eq!(
            client.get(tls.addr, "/-/healthy", None).unwrap().status,
            200
        )
    };
    let cut = trickle_until_cut(tls.addr, &[22, 3, 1, 0x40, 0x00], scrape);
    eprintln!("TLS handshake slowloris cut after {cut:?}");
    assert!(
        cut >= Duration::from_millis(800) && cut < Duration::from_secs(4),
        "{cut:?}"
    );

    // And after a request, an idle keep-alive connection gets the same deadline.
    let mut s = TcpStream::connect(exporter.addr).unwrap();
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
    let idle = Instant::now();
    wait_for(
        "the idle keep-alive connection to close",
        Duration::from_secs(10),
        || closed_by_server(&s).then_some(()),
    );
    assert!(idle.elapsed() < Duration::from_secs(4));
}

fn idle_flood(tls: bool) {
    let (site, ca) = tls_site(if tls {
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    } else {
        ""
    });
    // A long header timeout: the timeout must not be what saves the scrape.
    let exporter = site.start(&["--web.header-read-timeout=120s"]);
    let client = Client::trusting(&ca);
    let scrape = || {
        if tls {
            client
                .get(exporter.addr, "/metrics", None)
                .map(|r| r.status)
                .unwrap_or(0)
        } else {
            get(&exporter.url("/metrics")).status
        }
    };
    assert_eq!(scrape(), 200);
    let before = rss_kib(exporter.pid());

    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(exporter.addr).unwrap())
        .collect();
    // Half of them start a request (or a TLS record) and stop.
    for s in idle.iter_mut().step_by(2) {
        let _ = s.write_all(if tls {
            &[22, 3, 1, 0x40, 0x00][..]
        } else {
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
        });
    }
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(scrape(), 200);
    }
    let took = started.elapsed();
    // The server keeps at most --web.max-connections (256) of them open.
    let closed = wait_for(
        "the server to close the idle connections beyond its limit",
        Duration::from_secs(20),
        || {
            let n = idle.iter().filter(|s| closed_by_server(s)).count();
            (n >= 1000 - 256).then_some(n)
        },
    );
    let after = rss_kib(exporter.pid());
    eprintln!(
        "tls={tls}: 5 scrapes through 1000 idle connections took {took:?}; the server closed \
         {closed}; RSS {before} KiB before, {after} KiB with them open"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    drop(idle);
}

#[test]
fn a_thousand_idle_connections_do_not_stop_a_scrape() {
    idle_flood(false);
}

#[test]
fn a_thousand_idle_tls_connections_do_not_stop_a_scrape() {
    idle_flood(true);
}

#[test]
fn request_heads_and_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    std::fs::copy(sample_report(), &report).unwrap();
    let exporter = Exporter::start(&["--report.file", report.to_str().unwrap()]);
    let send = |raw: &[u8]| {
        let mut s = TcpStream::connect(exporter.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        parse_response(&out).map(|r| r.status)
    };

    // A 20 KiB header, and too many headers: 431, connection closed.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert_eq!(send(big.as_bytes()), Some(431));
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(send(many.as_bytes()), Some(431));
    // A body, an unknown method.
    assert_eq!(
        send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
        Some(413)
    );
    assert_eq!(
        send(b"BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        Some(405)
    );
    // Garbage.
    assert_eq!(send(b"\x00\x01\x02 nonsense\r\n\r\n"), Some(400));

    // One connection serves 1000 requests, then says Connection: close and closes.
    let s = TcpStream::connect(exporter.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let mut reader = BufReader::new(s);
    for n in 1..=1000 {
        writer
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = read_response(&mut reader).unwrap_or_else(|| panic!("no response {n}"));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("connection") == Some("close"),
            n == 1000,
            "request {n}"
        );
    }
    let _ = writer.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        read_response(&mut reader).is_none(),
        "request 1001 was served"
    );
}

#[test]
fn responses_leak_no_internals() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    std::fs::copy(sample_report(), &report).unwrap();
    let exporter = Exporter::start(&["--report.file", report.to_str().unwrap()]);
    wait_for("ready", Duration::from_secs(20), || {
        (get(&exporter.url("/-/ready")).status == 200).then_some(())
    });
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/../../etc/passwd"),
        ("POST", "/metrics"),
        ("GET", "/-/healthy"),
    ] {
        let r = request(method, &exporter.url(path), &[]);
        let text = r.text();
        // The landing page names each account's source, the report file's path included: it
        // is the operator's view (guard it with basic auth); no other answer names a path.
        let path_leak = if path == "/" {
            "/nonexistent-path-that-never-leaks"
        } else {
            dir.path().to_str().unwrap()
        };
        for leak in [path_leak, "hyper", "rustls", "tokio", "panicked", "src/"] {
            assert!(
                !text.contains(leak),
                "{method} {path} leaks {leak:?}: {text}"
            );
        }
        assert!(r.header("server").is_none(), "{method} {path}");
    }
}

#[test]
fn a_changed_web_config_applies_without_restart() {
    let (site, ca) = tls_site(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         basic_auth_users:\n  prometheus: {}\n",
        hash("old")
    ));
    let exporter = site.start(&["--web.config.reload-interval=200ms"]);
    let addr = exporter.addr;
    let client = Client::trusting(&ca);
    let status = |c: &Client, password: &str| {
        c.get(addr, "/metrics", Some(("prometheus", password)))
            .map(|r| r.status)
            .unwrap_or(0)
    };
    assert_eq!(status(&client, "old"), 200);
    // A new password.
    site.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  prometheus: {}\n",
            hash("new")
        ),
    );
    wait_for("the new password", Duration::from_secs(10), || {
        (status(&client, "new") == 200).then_some(())
    });
    assert_eq!(status(&client, "old"), 401);
    assert!(exporter.logs().contains("Web configuration reloaded"));

    // A rotated certificate from another CA, the configuration file untouched.
    let ca2 = Ca::new("rotated CA");
    ca2.write_server_cert(site.dir.path());
    let client2 = Client::trusting(&ca2);
    wait_for("the rotated certificate", Duration::from_secs(10), || {
        (status(&client2, "new") == 200).then_some(())
    });
    assert_eq!(
        status(&client, "new"),
        0,
        "the old certificate is still served"
    );

    // Bad files are refused with an error naming the problem; the old configuration serves on.
    let refusals = |n: usize| {
        wait_for("the refusal in the log", Duration::from_secs(10), || {
            let logs = exporter.logs();
            (logs.matches("Web configuration refused").count() >= n).then_some(logs)
        })
    };
    site.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_fil: server.key\n",
    );
    let logs = refusals(1);
    assert!(
        logs.contains("key_fil") && logs.contains("web.yml"),
        "{logs}"
    );
    assert_eq!(status(&client2, "new"), 200);

    site.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n\
             basic_auth_users:\n  prometheus: {}\n",
            hash("newer")
        ),
    );
    site.write("other.key", &Ca::new("x").issue(&["localhost"], false).1);
    let logs = refusals(2);
    assert!(logs.contains("tls_server_config.key_file"), "{logs}");
    assert_eq!(status(&client2, "new"), 200);
    assert_eq!(status(&client2, "newer"), 401);

    // Switching TLS off takes a restart.
    site.write(
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {}\n", hash("plain")),
    );
    let logs = refusals(3);
    assert!(logs.contains("takes a restart"), "{logs}");
    assert_eq!(status(&client2, "new"), 200);
    // The refusal is logged once, not on every poll.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        exporter.logs().matches("Web configuration refused").count(),
        3
    );

    // A good file again.
    site.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  prometheus: {}\n",
            hash("newest")
        ),
    );
    wait_for("the newest password", Duration::from_secs(10), || {
        (status(&client2, "newest") == 200).then_some(())
    });
}

#[test]
fn sighup_reloads_the_web_config() {
    let site = Site::new();
    site.write(
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {}\n", hash("before")),
    );
    // Polling effectively off: only SIGHUP can bring the change.
    let mut exporter = site.start(&["--web.config.reload-interval=1h"]);
    let status = |password: &str| {
        request(
            "GET",
            &exporter.url("/metrics"),
            &[(
                "authorization",
                &format!("Basic {}", basic("prometheus", password)),
            )],
        )
        .status
    };
    assert_eq!(status("before"), 200);
    site.write(
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {}\n", hash("after")),
    );
    let kill = Command::new("kill")
        .args(["-HUP", &exporter.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_for(
        "the password from SIGHUP's reload",
        Duration::from_secs(10),
        || (status("after") == 200).then_some(()),
    );
    assert_eq!(status("before"), 401);
    assert!(exporter.running());
}

/// POST /-/reload re-reads the web config at once and answers 500 naming what is wrong when it
/// is refused; the reload status says so until a good reload, and the old configuration serves
/// on meanwhile.
#[test]
fn a_refused_web_config_reload_answers_500_and_sets_the_reload_status() {
    let site = Site::new();
    site.write(
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {}\n", hash("before")),
    );
    // Polling effectively off: only the POST reloads.
    let exporter = site.start(&["--web.config.reload-interval=1h"]);
    let auth = |password: &str| format!("Basic {}", basic("prometheus", password));
    let metrics = |password: &str| {
        let r = request(
            "GET",
            &exporter.url("/metrics"),
            &[("authorization", &auth(password))],
        );
        (r.status, r.text())
    };
    let status_of = |text: &str| {
        crate::support::sample(
            text,
            "iam_credentials_exporter_config_last_reload_successful",
        )
    };
    let (code, text) = metrics("before");
    assert_eq!(code, 200);
    assert_eq!(status_of(&text), Some(1.0), "{text}");

    site.write(
        "web.yml",
        &format!("basic_auth_user:\n  prometheus: {}\n", hash("after")),
    );
    let r = request(
        "POST",
        &exporter.url("/-/reload"),
        &[("authorization", &auth("before"))],
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("web config") && r.text().contains("basic_auth_user"),
        "{}",
        r.text()
    );
    let (code, text) = metrics("before");
    assert_eq!(code, 200, "the old configuration serves on");
    assert_eq!(status_of(&text), Some(0.0), "{text}");

    site.write(
        "web.yml",
        &format!("basic_auth_users:\n  prometheus: {}\n", hash("after")),
    );
    let r = request(
        "POST",
        &exporter.url("/-/reload"),
        &[("authorization", &auth("before"))],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (code, text) = metrics("after");
    assert_eq!(code, 200);
    assert_eq!(status_of(&text), Some(1.0), "{text}");
    assert_eq!(metrics("before").0, 401);
}

/// Runs the binary to its exit (it must not start serving); returns code and stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .arg("--web.listen-address=127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for("the exporter to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap()
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn a_bad_web_config_stops_the_start_with_the_key_named() {
    let site = Site::new();
    let report = sample_report();
    let report = report.to_str().unwrap();
    let config = site.config();
    let cases = [
        (
            "basic_auth_users:\n  alice: plaintext-password\n",
            "basic_auth_users.alice",
        ),
        ("tls_server_config:\n  certfile: x.crt\n", "certfile"),
        (
            "http_server_config:\n  headers:\n    Server: me\n",
            "http_server_config.headers.Server",
        ),
        (
            "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n",
            "tls_server_config",
        ),
        ("rate_limit:\n  interval: 1s\n", "rate_limit.burst"),
        ("{", "web.yml"),
    ];
    for (text, key) in cases {
        site.write("web.yml", text);
        let (code, err) = run_to_exit(&["--report.file", report, "--web.config.file", &config]);
        assert_eq!(code, Some(1), "{text:?}: {err}");
        assert!(
            err.contains(key) && err.contains(&config),
            "{text:?} should name {key}: {err}"
        );
        assert!(!err.contains("plaintext-password"), "{err}");
    }
    let (code, err) = run_to_exit(&[
        "--report.file",
        report,
        "--web.config.file",
        "/nonexistent/web.yml",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent/web.yml"), "{err}");
}

#[test]
fn the_example_web_config_works() {
    // examples/web-config.yml, with certificates at the names it uses and the password the
    // README documents.
    let site = Site::new();
    let ca = Ca::new("example CA");
    ca.write_server_cert(site.dir.path());
    let example = std::fs::read_to_string(repo().join("examples/web-config.yml")).unwrap();
    site.write("web.yml", &example);
    let exporter = site.start(&[]);
    let client = Client::trusting(&ca);
    let r = client
        .get(
            exporter.addr,
            "/metrics",
            Some(("prometheus", "example-password")),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        client.get(exporter.addr, "/metrics", None).unwrap().status,
        401
    );
    assert_eq!(
        client
            .get(exporter.addr, "/-/healthy", None)
            .unwrap()
            .status,
        200
    );
}
