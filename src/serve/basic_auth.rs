//! Basic authentication against `basic_auth_users` (bcrypt hashes), as exporter-toolkit does
//! it, with the cost of bcrypt paid once per (user, password) and not on every scrape.
//!
//! - The outcome of each check is cached under a SHA-256 of a per-process random salt, the
//!   user, the hash and the password: the cache holds no password, and a lookup compares
//!   digests, not secrets. The comparison of the password itself is bcrypt's, in constant
//!   time.
//! - An unknown user is checked against a real user's hash all the same, so the time taken
//!   does not tell whether a user exists.
//! - One bcrypt runs at a time, on the blocking pool: a flood of wrong passwords costs at most
//!   one core and never delays a client whose credentials are already cached.
//! - Both caches are bounded; a full cache is emptied, so it cannot grow without bound.
//!
//! Nothing here logs a user name or a password.

use super::setting::SettingError;
use base64::Engine;
use http::HeaderValue;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// At most this many verified (user, password) pairs are remembered.
const MAX_VERIFIED: usize = 1024;
/// At most this many refused pairs are remembered.
const MAX_REFUSED: usize = 4096;

#[derive(Default)]
struct Cache {
    verified: HashSet<[u8; 32]>,
    refused: HashSet<[u8; 32]>,
}

/// The configured users and the cache of checked credentials.
pub struct BasicAuth {
    /// User name to bcrypt hash.
    users: BTreeMap<String, String>,
    salt: [u8; 32],
    cache: Mutex<Cache>,
    bcrypt: Arc<Semaphore>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish()
    }
}

/// What [`BasicAuth::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Good credentials, already known.
    Cached,
    /// Good credentials, checked with bcrypt now.
    Verified,
    /// No credentials, malformed ones, an unknown user or a wrong password.
    Refused,
}

/// Splits an `Authorization: Basic ...` header into user and password bytes.
fn credentials(header: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = header.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let encoded = rest.trim_ascii();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

impl BasicAuth {
    /// Checks every hash; the error names the user, never the hash.
    pub(crate) fn new(users: &BTreeMap<String, String>) -> Result<BasicAuth, SettingError> {
        for (user, hash) in users {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                return Err(SettingError::new(
                    key,
                    "a user name cannot contain ':' in basic authentication",
                ));
            }
            bcrypt::HashParts::from_str(hash)
                .map_err(|e| SettingError::new(key, format!("not a bcrypt hash: {e}")))?;
        }
        Ok(BasicAuth {
            users: users.clone(),
            salt: rand::random(),
            cache: Mutex::new(Cache::default()),
            bcrypt: Arc::new(Semaphore::new(1)),
        })
    }

    /// How many users are configured.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    fn cache_key(&self, user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user);
        h.update((hash.len() as u64).to_le_bytes());
        h.update(hash.as_bytes());
        h.update(password);
        h.finalize().into()
    }

    /// Checks the `Authorization` header of a request.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> Outcome {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return Outcome::Refused;
        };
        let known = std::str::from_utf8(&user)
            .ok()
            .and_then(|u| self.users.get(u));
        // An unknown user is checked against a real hash too (and refused whatever bcrypt
        // says), so that the answer takes as long.
        let hash = match known {
            Some(h) => h.clone(),
            None => match self.users.values().next() {
                Some(h) => h.clone(),
                None => return Outcome::Refused,
            },
        };
        let key = self.cache_key(&user, &hash, &password);
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.verified.contains(&key) {
                return Outcome::Cached;
            }
            if cache.refused.contains(&key) {
                return Outcome::Refused;
            }
        }
        let Ok(_permit) = self.bcrypt.clone().acquire_owned().await else {
            return Outcome::Refused;
        };
        let matched =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let good = matched && known.is_some();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (set, cap) = if good {
            (&mut cache.verified, MAX_VERIFIED)
        } else {
            (&mut cache.refused, MAX_REFUSED)
        };
        if set.len() >= cap {
            set.clear();
        }
        set.insert(key);
        if good {
            Outcome::Verified
        } else {
            Outcome::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth() -> BasicAuth {
        let users = BTreeMap::from([
            ("alice".to_owned(), bcrypt::hash("wonderland", 4).unwrap()),
            ("bob".to_owned(), bcrypt::hash("builder:42", 4).unwrap()),
        ]);
        BasicAuth::new(&users).unwrap()
    }

    #[test]
    fn parses_basic_credentials() {
        assert_eq!(
            credentials(&header("a", "b:c")),
            Some((b"a".to_vec(), b"b:c".to_vec()))
        );
        let lower = HeaderValue::from_static("basic YTpi");
        assert_eq!(credentials(&lower), Some((b"a".to_vec(), b"b".to_vec())));
        assert_eq!(credentials(&HeaderValue::from_static("Bearer YTpi")), None);
        assert_eq!(credentials(&HeaderValue::from_static("Basic !!")), None);
        assert_eq!(credentials(&HeaderValue::from_static("Basic")), None);
        // No colon: no password.
        assert_eq!(credentials(&HeaderValue::from_static("Basic YWJj")), None);
    }

    #[tokio::test]
    async fn checks_and_caches() {
        let a = auth();
        let good = header("alice", "wonderland");
        assert_eq!(a.check(Some(&good)).await, Outcome::Verified);
        assert_eq!(a.check(Some(&good)).await, Outcome::Cached);
        assert_eq!(
            a.check(Some(&header("bob", "builder:42"))).await,
            Outcome::Verified
        );
        for (u, p) in [
            ("alice", "wrong"),
            ("alice", "wrong"),
            ("carol", "wonderland"),
            ("Alice", "wonderland"),
            ("", ""),
        ] {
            assert_eq!(a.check(Some(&header(u, p))).await, Outcome::Refused, "{u}");
        }
        assert_eq!(a.check(None).await, Outcome::Refused);
        // A user that does not exist is refused even with another user's password.
        assert_eq!(
            a.check(Some(&header("mallory", "wonderland"))).await,
            Outcome::Refused
        );
    }

    #[test]
    fn bad_hashes_name_the_user_only() {
        let users = BTreeMap::from([("alice".to_owned(), "$2y$10$tooshort".to_owned())]);
        let e = BasicAuth::new(&users).unwrap_err();
        assert_eq!(e.key, "basic_auth_users.alice");
        assert!(!e.message.contains("tooshort"));
        let users = BTreeMap::from([("a:b".to_owned(), bcrypt::hash("x", 4).unwrap())]);
        assert!(BasicAuth::new(&users).is_err());
    }
}
