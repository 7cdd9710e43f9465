//! `--storage.path`: each account's last report digest kept on disk, so that a restart
//! compares the first report against the one before it instead of taking a new baseline.
//!
//! One JSON file per account, written whole to a temporary file and renamed over the old one,
//! so that a crash leaves the old file or the new one, never half of either. A file that
//! cannot be read or parsed is logged and taken as no history (a new baseline): never fatal.

use iam_credential_report::diff::{Change, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strum::EnumCount;

/// The file format's version; a file of another version is taken as no history.
const VERSION: u32 = 1;

/// Where digests are kept.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

/// What one file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    /// The account's key, to tell a file meant for another account.
    key: String,
    digest: Digest,
    /// The change counters' totals by change name (a name this build does not know is
    /// dropped, one it misses starts at 0).
    #[serde(default)]
    changes: BTreeMap<String, u64>,
}

/// What is kept of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The last report's digest.
    pub digest: Digest,
    /// `aws_iam_credential_changes_total` per change, indexed like [`Change::ALL`].
    pub changes: [u64; Change::COUNT],
}

/// A history file that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct HistoryError {
    path: String,
    what: String,
}

impl HistoryError {
    fn new(path: &Path, what: impl std::fmt::Display) -> HistoryError {
        HistoryError {
            path: path.display().to_string(),
            what: what.to_string(),
        }
    }
}

impl History {
    /// Keeps digests in `dir`, creating it when missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<History, HistoryError> {
        let dir = dir.into();
        if dir.exists() && !dir.is_dir() {
            return Err(HistoryError::new(&dir, "is not a directory"));
        }
        std::fs::create_dir_all(&dir).map_err(|e| HistoryError::new(&dir, e))?;
        Ok(History { dir })
    }

    /// The file of an account: its key made safe for a file name, plus a hash of the key so
    /// that two keys that read alike once made safe (`a/b`, `a_b`) do not share a file.
    pub fn path(&self, key: &str) -> PathBuf {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        // FNV-1a, as sharding uses: stable across runs and builds, unlike std's hasher.
        let hash = crate::config::fnv1a(key.as_bytes());
        self.dir.join(format!("{safe}-{hash:016x}.json"))
    }

    /// The account's last digest and counters; `Ok(None)` when there is none yet.
    pub fn load(&self, key: &str) -> Result<Option<Stored>, HistoryError> {
        let path = self.path(key);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(HistoryError::new(&path, e)),
        };
        let saved: Saved =
            serde_json::from_slice(&text).map_err(|e| HistoryError::new(&path, e))?;
        if saved.version != VERSION {
            return Err(HistoryError::new(
                &path,
                format!(
                    "format version {} (this build reads {VERSION})",
                    saved.version
                ),
            ));
        }
        if saved.key != key {
            return Err(HistoryError::new(
                &path,
                format!("holds account {:?}, not {key:?}", saved.key),
            ));
        }
        let mut changes = [0; Change::COUNT];
        for &c in Change::ALL {
            changes[c.index()] = saved.changes.get(c.name()).copied().unwrap_or(0);
        }
        Ok(Some(Stored {
            digest: saved.digest,
            changes,
        }))
    }

    /// Replaces the account's digest and counters.
    pub fn save(
        &self,
        key: &str,
        digest: &Digest,
        changes: &[u64; Change::COUNT],
    ) -> Result<(), HistoryError> {
        let path = self.path(key);
        let saved = Saved {
            version: VERSION,
            key: key.to_owned(),
            digest: digest.clone(),
            changes: Change::ALL
                .iter()
                .map(|c| (c.name().to_owned(), changes[c.index()]))
                .collect(),
        };
        let text = serde_json::to_vec(&saved).map_err(|e| HistoryError::new(&path, e))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| HistoryError::new(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iam_credential_report::diff::UserDigest;

    fn digest() -> Digest {
        Digest {
            account_id: Some("1".into()),
            users: vec![UserDigest {
                user: "alice".into(),
                arn: "arn:aws:iam::1:user/alice".into(),
                created: Some("2024-01-01T00:00:00Z".parse().unwrap()),
                password_enabled: Some(true),
                password_changed: None,
                mfa_active: true,
                keys: Default::default(),
                last_used: None,
            }],
        }
    }

    #[test]
    fn saves_and_loads_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path().join("state")).unwrap();
        assert!(h.load("111122223333").unwrap().is_none());
        let mut counts = [0; Change::COUNT];
        counts[Change::MfaDisabled.index()] = 3;
        h.save("111122223333", &digest(), &counts).unwrap();
        let stored = h.load("111122223333").unwrap().unwrap();
        assert_eq!(stored.digest, digest());
        assert_eq!(stored.changes, counts);
        assert!(h.load("/tmp/report.csv").unwrap().is_none());
        assert_ne!(h.path("a/b"), h.path("a_b"));
        assert!(!dir
            .path()
            .join("state")
            .join("111122223333.json.tmp")
            .exists());
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        std::fs::write(h.path("k"), b"{ not json").unwrap();
        assert!(h.load("k").is_err());
        h.save("other", &digest(), &[0; Change::COUNT]).unwrap();
        std::fs::copy(h.path("other"), h.path("k")).unwrap();
        let e = h.load("k").unwrap_err().to_string();
        assert!(e.contains("holds account \"other\""), "{e}");
        // Saving over a corrupt file replaces it.
        h.save("k", &digest(), &[0; Change::COUNT]).unwrap();
        assert_eq!(h.load("k").unwrap().unwrap().digest, digest());
    }
}
