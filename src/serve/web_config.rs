//! The web configuration file (`--web.config.file`) in the format of Prometheus's
//! exporter-toolkit, so operators write the same file as for every other exporter:
//! `tls_server_config`, `basic_auth_users` (bcrypt hashes), `http_server_config.headers` and
//! `rate_limit`.
//!
//! A file is parsed strictly (an unknown key is an error naming the key and the file),
//! validated completely (certificates and keys are loaded, hashes checked) and only then put
//! in force. [`spawn_reloader`] re-reads it when it or a file it names changes, or on SIGHUP; a file
//! that does not validate is refused with an error log and the previous one stays in force.
//! The server takes [`WebState::current`] for each connection (TLS) and each request
//! (authentication, headers), so a reload never drops the listener.
//!
//! Where this stops: the TLS details are in [`crate::tls`], password checks in
//! [`crate::basic_auth`]; serving is [`crate::server`].

use super::basic_auth::BasicAuth;
use super::rate_limit::RateLimiter;
use super::setting::SettingError;
use super::tls::{self, TlsFile};
use crate::config::duration;
use crate::state::Store;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why a web configuration file was refused. Every message names the file; the ones about a
/// setting name its key.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file itself cannot be read.
    #[error("web config file {path}: {error}")]
    Read {
        /// The web configuration file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Not YAML of the expected shape (unknown key, wrong type...).
    #[error("web config file {path}: {message}")]
    Parse {
        /// The web configuration file.
        path: PathBuf,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("web config file {path}: {key}: {message}")]
    Invalid {
        /// The web configuration file.
        path: PathBuf,
        /// The setting, as a dotted path (`tls_server_config.cert_file`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// `http_server_config`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility; this server speaks HTTP/1.1 only.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Words a setting's problem with the file it is in.
fn in_file(e: SettingError, path: &Path) -> WebConfigError {
    WebConfigError::Invalid {
        path: path.to_owned(),
        key: e.key,
        message: e.message,
    }
}

/// A duration written as a Go duration string (`1s`, `500ms`) or a number of nanoseconds.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GoDuration {
    Nanos(u64),
    Text(String),
}

/// `rate_limit`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    interval: Option<GoDuration>,
    burst: Option<u32>,
}

/// The whole file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebFile {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RateLimitFile>,
}

/// Response headers an operator may set, with the values allowed where the set is closed
/// (the same list as exporter-toolkit's).
const CONFIGURABLE_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A validated web configuration, ready to serve with.
#[derive(Default)]
pub struct WebConfig {
    /// TLS settings when TLS is on (certificates already loaded).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic authentication when users are configured.
    pub auth: Option<BasicAuth>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: HeaderMap,
    /// The request rate limit, if any.
    pub rate_limit: Option<RateLimiter>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the users or anything read from key files.
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.auth.as_ref().map_or(0, BasicAuth::users))
            .field("headers", &self.headers.len())
            .field("rate_limit", &self.rate_limit.is_some())
            .finish()
    }
}

fn parse_go_duration(d: &GoDuration) -> Result<Duration, duration::DurationError> {
    match d {
        GoDuration::Nanos(n) => Ok(Duration::from_nanos(*n)),
        GoDuration::Text(s) => duration::parse(s),
    }
}

fn headers(written: &BTreeMap<String, String>) -> Result<HeaderMap, SettingError> {
    let mut map = HeaderMap::new();
    for (name, value) in written {
        let key = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) = CONFIGURABLE_HEADERS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            let names: Vec<_> = CONFIGURABLE_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(SettingError::new(
                key,
                format!(
                    "this header cannot be configured (allowed: {})",
                    names.join(", ")
                ),
            ));
        };
        if value.is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(SettingError::new(
                key,
                format!("expected one of {allowed:?}, got {value:?}"),
            ));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| SettingError::new(&key, "not a valid header value"))?;
        let name = HeaderName::from_bytes(canonical.as_bytes())
            .expect("the configurable header names are valid");
        map.insert(name, value);
    }
    Ok(map)
}

fn rate_limit(written: &RateLimitFile) -> Result<Option<RateLimiter>, SettingError> {
    let interval = match &written.interval {
        None => return Ok(None),
        Some(d) => parse_go_duration(d)
            .map_err(|e| SettingError::new("rate_limit.interval", e.to_string()))?,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    let burst = written.burst.unwrap_or(0);
    if burst == 0 {
        return Err(SettingError::new(
            "rate_limit.burst",
            "must be at least 1 when rate_limit.interval is set (0 would refuse every request)",
        ));
    }
    Ok(Some(RateLimiter::new(interval, burst)))
}

fn parse(path: &Path, text: &str) -> Result<WebFile, WebConfigError> {
    // An empty file (or one with only comments) is a valid, empty configuration.
    let parsed: Option<WebFile> =
        serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    Ok(parsed.unwrap_or_default())
}

fn read(path: &Path) -> Result<String, WebConfigError> {
    std::fs::read_to_string(path).map_err(|error| WebConfigError::Read {
        path: path.to_owned(),
        error,
    })
}

/// The directory relative paths in the file are resolved against (the file's own, as in
/// exporter-toolkit).
fn base_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

impl WebConfig {
    /// Reads and validates the file at `path`: loads certificates and keys, checks hashes.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let file = parse(path, &read(path)?)?;
        let dir = base_dir(path);
        let in_file = |e: SettingError| in_file(e, path);

        let tls = match &file.tls_server_config {
            Some(t) if t.enabled() => Some(tls::server_config(t, &dir).map_err(in_file)?),
            _ => None,
        };
        let auth = match &file.basic_auth_users {
            Some(users) if !users.is_empty() => Some(BasicAuth::new(users).map_err(in_file)?),
            _ => None,
        };
        let headers = match file
            .http_server_config
            .as_ref()
            .and_then(|h| h.headers.as_ref())
        {
            Some(h) => headers(h).map_err(in_file)?,
            None => HeaderMap::new(),
        };
        let rate_limit = match &file.rate_limit {
            Some(r) => rate_limit(r).map_err(in_file)?,
            None => None,
        };
        Ok(WebConfig {
            tls,
            auth,
            headers,
            rate_limit,
        })
    }
}

/// A fingerprint of the file and every file it names, to notice a change of any of them
/// (a rotated certificate usually leaves the web configuration file untouched).
fn fingerprint(path: &Path) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut add = |p: &Path| {
        hash.update(p.as_os_str().as_encoded_bytes());
        match std::fs::read(p) {
            Ok(bytes) => {
                hash.update([1]);
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
            Err(_) => hash.update([0]),
        }
    };
    add(path);
    let named = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| parse(path, &text).ok())
        .and_then(|f| f.tls_server_config)
        .map(|t| t.files(&base_dir(path)))
        .unwrap_or_default();
    for p in named {
        add(&p);
    }
    hash.finalize().into()
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// Nothing changed since the last attempt.
    Unchanged,
    /// The new configuration is in force.
    Applied,
    /// The new configuration was refused; the previous one stays in force.
    Refused(WebConfigError),
}

/// The web configuration in force, shared by the server and the reloader.
#[derive(Debug)]
pub struct WebState {
    path: Option<PathBuf>,
    current: RwLock<Arc<WebConfig>>,
    /// The fingerprint of the inputs last tried, applied or not.
    last_seen: Mutex<[u8; 32]>,
}

impl Default for WebState {
    fn default() -> Self {
        WebState::plain()
    }
}

impl WebState {
    /// No configuration file: plain HTTP, no authentication.
    pub fn plain() -> WebState {
        WebState {
            path: None,
            current: RwLock::new(Arc::new(WebConfig::default())),
            last_seen: Mutex::new([0; 32]),
        }
    }

    /// Loads the file at `path`, or fails with an error naming what is wrong.
    pub fn load(path: &Path) -> Result<WebState, WebConfigError> {
        let seen = fingerprint(path);
        let config = WebConfig::load(path)?;
        Ok(WebState {
            path: Some(path.to_owned()),
            current: RwLock::new(Arc::new(config)),
            last_seen: Mutex::new(seen),
        })
    }

    /// The configuration file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<WebConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file if it or a file it names changed since the last attempt (or in any
    /// case when `force`). Blocking: file reads and certificate parsing.
    pub fn reload(&self, force: bool) -> Reload {
        let Some(path) = &self.path else {
            return Reload::Unchanged;
        };
        let seen = fingerprint(path);
        {
            let mut last = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            if !force && *last == seen {
                return Reload::Unchanged;
            }
            *last = seen;
        }
        let config = match WebConfig::load(path) {
            Ok(c) => c,
            Err(e) => return Reload::Refused(e),
        };
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.tls.is_some() != config.tls.is_some() {
            return Reload::Refused(WebConfigError::Invalid {
                path: path.clone(),
                key: "tls_server_config".to_owned(),
                message: "switching TLS on or off takes a restart; keeping the previous \
                          configuration"
                    .to_owned(),
            });
        }
        *current = Arc::new(config);
        Reload::Applied
    }
}

/// Logs what a reload did. Returns `Some(applied)` when the file was tried, `None` when it
/// was unchanged.
pub fn report(outcome: &Reload, state: &WebState) -> Option<bool> {
    match outcome {
        Reload::Unchanged => None,
        Reload::Applied => {
            let c = state.current();
            tracing::info!(
                tls = c.tls.is_some(),
                basic_auth_users = c.auth.as_ref().map_or(0, BasicAuth::users),
                "Web configuration reloaded"
            );
            Some(true)
        }
        Reload::Refused(e) => {
            tracing::error!(error = %e, "Web configuration refused; the previous one stays in force");
            Some(false)
        }
    }
}

/// Starts re-reading the web configuration every `interval` when it (or a certificate, key
/// or CA file it names) changed, recording each outcome in `store`'s reload status. SIGHUP
/// and POST /-/reload reload it at once through the daemon, with the config file. Abort the
/// task to stop.
pub fn spawn_reloader(
    state: Arc<WebState>,
    interval: Duration,
    store: Arc<Store>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if state.path().is_none() {
                continue;
            }
            let (s, st) = (state.clone(), store.clone());
            let done = tokio::task::spawn_blocking(move || {
                if let Some(ok) = report(&s.reload(false), &s) {
                    st.record_reload(ok);
                }
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "Reloading the web configuration failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        WebConfig::load(&path)
    }

    fn error(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_file_is_plain_http() {
        for text in [
            "",
            "# nothing\n",
            "basic_auth_users:\n",
            "tls_server_config: {}\n",
        ] {
            let c = load(text).unwrap();
            assert!(c.tls.is_none() && c.auth.is_none(), "{text:?}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = error("tls_server_config:\n  cert_fil: x\n");
        assert!(e.contains("web.yml") && e.contains("cert_fil"), "{e}");
        let e = error("basic_auth:\n  a: b\n");
        assert!(e.contains("basic_auth"), "{e}");
        let e = error("http_server_config:\n  header: {}\n");
        assert!(e.contains("header"), "{e}");
    }

    #[test]
    fn headers_follow_the_toolkit_rules() {
        let c = load(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
             Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\n",
        )
        .unwrap();
        assert_eq!(c.headers.get("x-frame-options").unwrap(), "deny");
        assert_eq!(c.headers.len(), 2);
        let e = error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert!(
            e.contains("http_server_config.headers.X-Frame-Options"),
            "{e}"
        );
        let e = error("http_server_config:\n  headers:\n    Server: x\n");
        assert!(e.contains("cannot be configured"), "{e}");
    }

    #[test]
    fn users_need_bcrypt_hashes() {
        let e = error("basic_auth_users:\n  alice: plaintext\n");
        assert!(e.contains("basic_auth_users.alice"), "{e}");
        assert!(
            !e.contains("plaintext"),
            "the value must not be echoed: {e}"
        );
    }

    #[test]
    fn tls_needs_a_certificate_and_key() {
        let e = error("tls_server_config:\n  cert_file: missing.pem\n");
        assert!(e.contains("tls_server_config"), "{e}");
        let e = error("tls_server_config:\n  cert_file: missing.pem\n  key_file: k.pem\n");
        assert!(
            e.contains("tls_server_config.cert_file") && e.contains("missing.pem"),
            "{e}"
        );
    }

    #[test]
    fn rate_limit() {
        assert!(load("rate_limit:\n  interval: 0\n  burst: 0\n")
            .unwrap()
            .rate_limit
            .is_none());
        let c = load("rate_limit:\n  interval: 1h\n  burst: 2\n").unwrap();
        let r = c.rate_limit.unwrap();
        assert!(r.allow() && r.allow() && !r.allow());
        let e = error("rate_limit:\n  interval: 1s\n");
        assert!(e.contains("rate_limit.burst"), "{e}");
        let e = error("rate_limit:\n  interval: soon\n  burst: 1\n");
        assert!(e.contains("rate_limit.interval"), "{e}");
    }
}
