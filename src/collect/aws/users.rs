//! IAM users' paths and tags, for `aws_iam_user_info` (owners on findings): alerts that name a
//! user can then say whose user it is, and Alertmanager can route on the owner or team tag.
//! Read only when tag keys are configured (`aws.user_tags`, `--aws.user-tags`) and per-user
//! series are on; otherwise no call is made.
//!
//! **Which call.** The credential report has neither paths nor tags, and ListUsers returns
//! paths but never tags. Two ways remain:
//!
//! - GetAccountAuthorizationDetails with `Filter=User`, up to 1,000 users a page
//!   (`MaxItems`): every user with its path and tags. An account holds at most 5,000 IAM users
//!   (IAM's quota), so a read is about **5 calls** (IAM may return fewer than `MaxItems` a
//!   page, and every page is followed); for 200 accounts of 5,000 users, about 1,000 calls.
//!   Its cost is the permission: `iam:GetAccountAuthorizationDetails` lets its holder read
//!   every user, group, role and policy document of the account (the filter is a request
//!   parameter, not something a policy can pin), and its pages carry each user's inline
//!   policies, groups and attached policies too, which makes them large (still 5 answers).
//! - ListUsers (1,000 a page) and ListUserTags per user: the narrowest permissions
//!   (`iam:ListUsers`, `iam:ListUserTags`), but **5,005 calls** per account of 5,000 users, and
//!   1,001,000 for 200 accounts: per read, not per day.
//!
//! IAM throttles per account, with no published rate, and that budget is shared with every
//! other caller of the account (Terraform, CloudFormation, the console, other security tools):
//! guardian/security-hq had to slow its credential report cadence after throttling in large
//! estates (#209, #239). Five thousand calls per account per read would spend that budget by
//! the thousand, would take minutes per account even unthrottled at tens of milliseconds a
//! call (past the 5-minute `--refresh.timeout` of a round once throttling backs it off), and
//! would throttle the other callers too. So this reads **GetAccountAuthorizationDetails**: five
//! calls an hour per account, against a broader read-only permission that is already part of
//! AWS's `SecurityAudit` and `ReadOnlyAccess` managed policies, asked for only when tags are
//! configured (docs/iam-policy.json keeps it in a statement of its own that says so).
//!
//! **How often.** Once an hour ([`USER_TAGS_INTERVAL`]), kept between refreshes, rather than
//! on every 15-minute refresh: tags change with reorganisations, not by the minute; an alert
//! needs an owner, not a minute-fresh one; the user it names comes from a credential report
//! that can be 4 hours old, so an owner at most an hour old is fresher than what it labels;
//! and it costs a quarter of the calls (120 a day per account of 5,000 users instead of 480).
//! Changed keys (a reload) are read at the next refresh. A failed read is counted in
//! `iam_credentials_exporter_live_call_failures_total{api="GetAccountAuthorizationDetails"}`,
//! never fails the round, and is tried again at the next refresh; meanwhile the last good
//! read stays served for up to [`USER_TAGS_KEEP`], because an alert whose labels lose their
//! owner becomes another alert in Alertmanager (it resolves and fires again, routed
//! elsewhere), which a passing throttle should not cause. After that the series go until a
//! read succeeds.
//!
//! The per-user switch and the user filters (`--metrics.per-user`, `--metrics.user-include`,
//! `--metrics.user-exclude`) apply as they do to the other per-user series (a user without
//! per-user series has no info series), but here, when the directory is handed to the round,
//! rather than when it is rendered: `expose::render_live` and its callers take no render
//! options, and with per-user series off nothing needs to be read at all.

use super::retry::{Api, Caller, Failure, Markers};
use aws_sdk_iam::types::EntityType;
use iam_credential_report::account::{UserDirectory, UserInfo};
use iam_credential_report::expose::RenderOptions;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a good read of the users' tags is used before they are read again.
pub const USER_TAGS_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How long the last good read stays served while reads fail.
pub const USER_TAGS_KEEP: Duration = Duration::from_secs(24 * 60 * 60);

/// Users per GetAccountAuthorizationDetails page: IAM's most.
pub const USER_TAGS_PAGE: i32 = 1000;

/// Which users' tags to read.
#[derive(Debug, Clone)]
pub struct UserTags {
    /// The tag keys, validated (`config::UserTagKeys`); empty: read nothing.
    pub keys: Vec<String>,
    /// The per-user switch and filters: users they leave out get no info series, and with
    /// per-user series off nothing is read.
    pub users: RenderOptions,
    /// Read again once the last good read is this old ([`USER_TAGS_INTERVAL`]).
    pub reread_after: Duration,
}

impl Default for UserTags {
    fn default() -> Self {
        UserTags {
            keys: Vec::new(),
            users: RenderOptions::all_users(),
            reread_after: USER_TAGS_INTERVAL,
        }
    }
}

impl UserTags {
    fn wanted(&self) -> bool {
        !self.keys.is_empty() && self.users.per_user
    }
}

/// The [`UserTags`] in force, shared by the fleet with every AWS source and replaced when the
/// config file is reloaded; each round reads the current one.
#[derive(Debug, Clone, Default)]
pub struct UserTagsHandle(Arc<RwLock<Arc<UserTags>>>);

impl UserTagsHandle {
    /// A handle holding `tags`.
    pub fn new(tags: UserTags) -> UserTagsHandle {
        UserTagsHandle(Arc::new(RwLock::new(Arc::new(tags))))
    }

    /// Replaces the settings: sources use them from their next round.
    pub fn set(&self, tags: UserTags) {
        *self.0.write().expect("user tags lock") = Arc::new(tags);
    }

    /// The settings in force.
    pub fn get(&self) -> Arc<UserTags> {
        self.0.read().expect("user tags lock").clone()
    }
}

/// The last good read, every user's.
#[derive(Debug)]
struct Read {
    at: Instant,
    /// Every user, with the keys read; handed out as it is when no filter leaves anyone out.
    directory: Arc<UserDirectory>,
}

/// One account's user directory: the settings and the last good read.
#[derive(Debug, Default)]
pub(super) struct Directory {
    pub(super) settings: UserTagsHandle,
    last: Mutex<Option<Read>>,
}

impl Directory {
    /// The directory for this round, and the failure of its read when one was made and
    /// failed. `read` reads every user's path and the tags of `keys`.
    pub(super) async fn for_round<F>(
        &self,
        read: impl FnOnce(Vec<String>) -> F,
    ) -> (Option<Arc<UserDirectory>>, Option<Failure>)
    where
        F: std::future::Future<Output = Result<Vec<UserInfo>, Failure>>,
    {
        let want = self.settings.get();
        if !want.wanted() {
            *self.last.lock().expect("user directory lock") = None;
            return (None, None);
        }
        let fresh = self
            .last
            .lock()
            .expect("user directory lock")
            .as_ref()
            .is_some_and(|r| {
                r.directory.tag_keys == want.keys && r.at.elapsed() < want.reread_after
            });
        let mut failure = None;
        if !fresh {
            match read(want.keys.clone()).await {
                Ok(users) => {
                    tracing::debug!(users = users.len(), "Read the IAM users' tags");
                    *self.last.lock().expect("user directory lock") = Some(Read {
                        at: Instant::now(),
                        directory: Arc::new(UserDirectory {
                            tag_keys: want.keys.clone(),
                            users,
                        }),
                    });
                }
                Err(f) => failure = Some(f),
            }
        }
        let last = self.last.lock().expect("user directory lock");
        let directory = last
            .as_ref()
            .filter(|r| r.directory.tag_keys == want.keys && r.at.elapsed() < USER_TAGS_KEEP)
            .map(|r| {
                let all = &r.directory;
                if all.users.iter().all(|u| want.users.wants(&u.name)) {
                    return all.clone();
                }
                Arc::new(UserDirectory {
                    tag_keys: all.tag_keys.clone(),
                    users: all
                        .users
                        .iter()
                        .filter(|u| want.users.wants(&u.name))
                        .cloned()
                        .collect(),
                })
            });
        (directory, failure)
    }
}

/// Every IAM user's path and the values of `keys`: GetAccountAuthorizationDetails with
/// `Filter=User`, [`USER_TAGS_PAGE`] users a page, every page. IAM user tag keys are
/// case-insensitive, so a key matches a tag whatever its case.
pub(super) async fn read(
    client: &aws_sdk_iam::Client,
    caller: &Caller,
    keys: &[String],
    deadline: Instant,
) -> Result<Vec<UserInfo>, Failure> {
    let api = Api::GetAccountAuthorizationDetails;
    let lower: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
    let mut users = Vec::new();
    let mut marker: Option<String> = None;
    let mut markers = Markers::default();
    loop {
        let page = caller
            .call(api, deadline, || {
                client
                    .get_account_authorization_details()
                    .filter(EntityType::User)
                    .max_items(USER_TAGS_PAGE)
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
        for u in page.user_detail_list() {
            let Some(name) = u.user_name() else {
                continue;
            };
            let tags = lower
                .iter()
                .map(|k| {
                    u.tags()
                        .iter()
                        .find(|t| t.key().to_lowercase() == *k)
                        .map_or_else(String::new, |t| t.value().to_owned())
                })
                .collect();
            users.push(UserInfo {
                name: name.to_owned(),
                path: u.path().unwrap_or_default().to_owned(),
                tags,
            });
        }
        marker = markers.next(api, page.is_truncated(), page.marker())?;
        if marker.is_none() {
            return Ok(users);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::retry::Verdict;
    use super::*;
    use iam_credential_report::account::FailureReason;
    use regex::Regex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn alice_and_bob(keys: Vec<String>) -> Result<Vec<UserInfo>, Failure> {
        Ok(["alice", "bob"]
            .iter()
            .map(|n| UserInfo {
                name: (*n).to_owned(),
                path: "/".to_owned(),
                tags: keys.iter().map(|k| format!("{n}-{k}")).collect(),
            })
            .collect())
    }

    fn denied(_: Vec<String>) -> Result<Vec<UserInfo>, Failure> {
        Err(Failure {
            verdict: Verdict::Fail(FailureReason::AccessDenied),
            message: "denied".to_owned(),
        })
    }

    fn tags(keys: &[&str], reread_after: Duration) -> UserTags {
        UserTags {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            reread_after,
            ..UserTags::default()
        }
    }

    fn names(d: &Option<Arc<UserDirectory>>) -> Vec<&str> {
        d.as_ref().map_or_else(Vec::new, |d| {
            d.users.iter().map(|u| u.name.as_str()).collect()
        })
    }

    #[tokio::test]
    async fn nothing_is_read_without_keys_or_per_user_series() {
        let calls = AtomicUsize::new(0);
        let counted = |keys| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(alice_and_bob(keys))
        };
        let dir = Directory::default();
        assert!(matches!(dir.for_round(counted).await, (None, None)));
        dir.settings.set(UserTags {
            users: RenderOptions::default(),
            ..tags(&["owner"], USER_TAGS_INTERVAL)
        });
        assert!(matches!(dir.for_round(counted).await, (None, None)));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_good_read_is_kept_until_it_is_due_or_the_keys_change() {
        let calls = AtomicUsize::new(0);
        let counted = |keys| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(alice_and_bob(keys))
        };
        let dir = Directory::default();
        dir.settings.set(tags(&["owner"], USER_TAGS_INTERVAL));
        for _ in 0..3 {
            let (d, f) = dir.for_round(counted).await;
            assert!(f.is_none());
            assert_eq!(d.unwrap().users[1].tags, ["bob-owner"]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        dir.settings
            .set(tags(&["owner", "team"], USER_TAGS_INTERVAL));
        let (d, _) = dir.for_round(counted).await;
        assert_eq!(d.unwrap().tag_keys, ["owner", "team"]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        dir.settings.set(tags(&["owner", "team"], Duration::ZERO));
        dir.for_round(counted).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_last_good_one_of_the_same_keys() {
        let dir = Directory::default();
        dir.settings.set(tags(&["owner"], Duration::ZERO));
        let (first, _) = dir
            .for_round(|k| std::future::ready(alice_and_bob(k)))
            .await;
        let (kept, failure) = dir.for_round(|k| std::future::ready(denied(k))).await;
        assert_eq!(
            failure.unwrap().verdict.reason(),
            FailureReason::AccessDenied
        );
        assert_eq!(kept, first);
        // Other keys: the last read does not tell them.
        dir.settings.set(tags(&["team"], Duration::ZERO));
        let (none, failure) = dir.for_round(|k| std::future::ready(denied(k))).await;
        assert!(none.is_none() && failure.is_some());
    }

    #[tokio::test]
    async fn without_filters_every_round_shares_the_read() {
        let dir = Directory::default();
        dir.settings.set(tags(&["owner"], USER_TAGS_INTERVAL));
        let (a, _) = dir
            .for_round(|k| std::future::ready(alice_and_bob(k)))
            .await;
        let (b, _) = dir
            .for_round(|k| std::future::ready(alice_and_bob(k)))
            .await;
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
    }

    #[tokio::test]
    async fn the_user_filters_apply() {
        let dir = Directory::default();
        dir.settings.set(UserTags {
            users: RenderOptions {
                per_user: true,
                user_include: None,
                user_exclude: Some(Regex::new("^b").unwrap()),
                ..RenderOptions::default()
            },
            ..tags(&["owner"], USER_TAGS_INTERVAL)
        });
        let (d, _) = dir
            .for_round(|k| std::future::ready(alice_and_bob(k)))
            .await;
        assert_eq!(names(&d), ["alice"]);
    }
}
