//! What changed between two reports of one account: a fixed set of change events.
//!
//! Pure: two [`Digest`]s in, events out. A digest keeps of each row only what the comparison
//! needs (identity, MFA, password, key slots, last use), so that it is small enough to keep
//! between refreshes and to store across restarts.
//!
//! Rules, in the words of the events:
//! - A user is the same user when both its ARN and its `user_creation_time` are the same: a
//!   user deleted and created again under the same name is `user_deleted` and `user_created`.
//! - One event per thing that happened: a deleted user is `user_deleted` only (not also its
//!   password and keys), a new user `user_created` only, a key in an empty slot
//!   `access_key_created` only (not also `access_key_activated`), a password set where there
//!   was none `password_enabled` only (not also `password_changed`).
//! - A key slot whose `last_rotated` moved holds a new key: `access_key_created`.
//! - `root_used`: the root row's last use (password or either key) moved forward.
//! - A value the report cannot give (root's `not_supported` password) changes nothing.

use crate::report::{CredentialReport, Stamp, UserRow, ROOT_USER};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use strum::{EnumCount, IntoStaticStr, VariantArray};

/// A change event: the `change` label of `aws_iam_credential_changes_total`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    IntoStaticStr,
    VariantArray,
    EnumCount,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Change {
    /// A user appeared.
    UserCreated,
    /// A user disappeared.
    UserDeleted,
    /// A user's MFA went from off to on.
    MfaEnabled,
    /// A user's MFA went from on to off.
    MfaDisabled,
    /// A console password was set where there was none.
    PasswordEnabled,
    /// A console password was removed.
    PasswordDisabled,
    /// The console password's `password_last_changed` moved.
    PasswordChanged,
    /// A key slot went from empty to a key, or its `last_rotated` moved (a new key).
    AccessKeyCreated,
    /// A key slot went from a key to empty.
    AccessKeyDeleted,
    /// An existing key went from inactive to active.
    AccessKeyActivated,
    /// An existing key went from active to inactive.
    AccessKeyDeactivated,
    /// Root's last password or key use moved forward.
    RootUsed,
}

impl Change {
    /// Every change, in the order they are exported.
    pub const ALL: &'static [Change] = Self::VARIANTS;

    /// The label value.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The position in [`Change::ALL`], for counters kept in an array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One key slot, as the comparison needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyDigest {
    /// The slot holds a key.
    pub exists: bool,
    /// The key is active.
    pub active: bool,
    /// Its creation or last rotation.
    pub last_rotated: Option<DateTime<Utc>>,
}

/// One row, as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDigest {
    /// The user name (`<root_account>` for root).
    pub user: String,
    /// The ARN.
    pub arn: String,
    /// `user_creation_time`: with the ARN, the user's identity.
    pub created: Option<DateTime<Utc>>,
    /// `password_enabled`; `None` where the report writes `not_supported`.
    pub password_enabled: Option<bool>,
    /// `password_last_changed`.
    pub password_changed: Option<DateTime<Utc>>,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// Key slots 1 and 2.
    pub keys: [KeyDigest; 2],
    /// The latest use of the password or either key.
    pub last_used: Option<DateTime<Utc>>,
}

impl UserDigest {
    /// The digest of a row.
    pub fn of(row: &UserRow) -> UserDigest {
        let key = |k: &crate::report::AccessKey| KeyDigest {
            exists: k.exists(),
            active: k.is_active(),
            last_rotated: k.last_rotated.at(),
        };
        UserDigest {
            user: row.user.clone(),
            arn: row.arn.clone(),
            created: row.created.at(),
            password_enabled: row.password_enabled,
            password_changed: row.password_last_changed.at(),
            mfa_active: row.mfa_active,
            keys: [key(&row.keys[0]), key(&row.keys[1])],
            last_used: [
                row.password_last_used,
                row.keys[0].last_used,
                row.keys[1].last_used,
            ]
            .iter()
            .filter_map(Stamp::at)
            .max(),
        }
    }

    fn is_root(&self) -> bool {
        self.user == ROOT_USER
    }
}

/// What the comparison keeps of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The account the report's ARNs name: reports of two accounts are not compared.
    #[serde(default)]
    pub account_id: Option<String>,
    /// One entry per row, in report order.
    pub users: Vec<UserDigest>,
}

impl Digest {
    /// The digest of a parsed report.
    pub fn of(report: &CredentialReport) -> Digest {
        Digest {
            account_id: report.account_id.clone(),
            users: report.rows.iter().map(UserDigest::of).collect(),
        }
    }
}

/// One change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened.
    pub change: Change,
    /// The user (`<root_account>` for root).
    pub user: String,
    /// The user's ARN.
    pub arn: String,
    /// The key slot (1 or 2), for key events.
    pub slot: Option<u8>,
    /// The value before, as the report writes it (a time in RFC 3339, `true`/`false`, `active`).
    pub before: Option<String>,
    /// The value after.
    pub after: Option<String>,
}

fn time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn flag(b: bool) -> Option<String> {
    Some(b.to_string())
}

fn state(active: bool) -> Option<String> {
    Some(if active { "active" } else { "inactive" }.to_owned())
}

/// What happened to a user's keys.
enum KeyChange {
    Created {
        slot: u8,
        before: Option<String>,
        after: Option<String>,
    },
    Deleted {
        slot: u8,
        before: Option<String>,
    },
    Toggled {
        slot: u8,
        active: bool,
    },
}

/// A user's key changes. The same key is the same `last_rotated`, whatever its slot: AWS lists
/// a user's keys in the report's two slots in order, so deleting the first key moves the
/// second into slot 1, which is one deletion, not a deletion and a creation. Keys without a
/// date are matched by slot. A slot whose key was replaced (its old key gone, a new one in
/// it) is one `access_key_created`.
fn key_changes(old: &[KeyDigest; 2], new: &[KeyDigest; 2]) -> Vec<KeyChange> {
    let mut old_left: Vec<Option<(u8, &KeyDigest)>> = old
        .iter()
        .enumerate()
        .filter(|(_, k)| k.exists)
        .map(|(i, k)| Some((i as u8 + 1, k)))
        .collect();
    let mut out = Vec::new();
    let mut created: Vec<(u8, &KeyDigest)> = Vec::new();
    for (i, nk) in new.iter().enumerate().filter(|(_, k)| k.exists) {
        let slot = i as u8 + 1;
        let same = old_left.iter_mut().find(|o| {
            o.is_some_and(|(os, ok)| match (ok.last_rotated, nk.last_rotated) {
                (Some(a), Some(b)) => a == b,
                (None, None) => os == slot,
                _ => false,
            })
        });
        match same.and_then(Option::take) {
            Some((_, ok)) if ok.active != nk.active => out.push(KeyChange::Toggled {
                slot,
                active: nk.active,
            }),
            Some(_) => {}
            None => created.push((slot, nk)),
        }
    }
    let key_time = |k: &KeyDigest| time(k.last_rotated).or_else(|| state(k.active));
    for (slot, nk) in created {
        // The old key that left this very slot was replaced: one event, with both dates.
        let replaced = old_left
            .iter_mut()
            .find(|o| o.is_some_and(|(os, _)| os == slot))
            .and_then(Option::take);
        out.push(KeyChange::Created {
            slot,
            before: replaced.and_then(|(_, ok)| time(ok.last_rotated)),
            after: key_time(nk),
        });
    }
    for (slot, ok) in old_left.into_iter().flatten() {
        out.push(KeyChange::Deleted {
            slot,
            before: key_time(ok),
        });
    }
    out
}

/// The events that turn `old` into `new`: users present in `new` in its order, then the users
/// deleted since `old`, in its order.
pub fn diff(old: &Digest, new: &Digest) -> Vec<Event> {
    let identity = |u: &UserDigest| (u.arn.clone(), u.created);
    let before: HashMap<_, &UserDigest> = old.users.iter().map(|u| (identity(u), u)).collect();
    let after: HashMap<_, &UserDigest> = new.users.iter().map(|u| (identity(u), u)).collect();
    let mut out = Vec::new();
    for n in &new.users {
        let event = |change, slot, before, after| Event {
            change,
            user: n.user.clone(),
            arn: n.arn.clone(),
            slot,
            before,
            after,
        };
        let Some(o) = before.get(&identity(n)) else {
            out.push(event(Change::UserCreated, None, None, time(n.created)));
            continue;
        };
        if o.mfa_active != n.mfa_active {
            let change = if n.mfa_active {
                Change::MfaEnabled
            } else {
                Change::MfaDisabled
            };
            out.push(event(change, None, flag(o.mfa_active), flag(n.mfa_active)));
        }
        match (o.password_enabled, n.password_enabled) {
            (Some(false), Some(true)) => out.push(event(
                Change::PasswordEnabled,
                None,
                flag(false),
                flag(true),
            )),
            (Some(true), Some(false)) => out.push(event(
                Change::PasswordDisabled,
                None,
                flag(true),
                flag(false),
            )),
            (Some(true), Some(true)) | (None, None)
                if n.password_changed.is_some() && o.password_changed != n.password_changed =>
            {
                out.push(event(
                    Change::PasswordChanged,
                    None,
                    time(o.password_changed),
                    time(n.password_changed),
                ))
            }
            _ => {}
        }
        for k in key_changes(&o.keys, &n.keys) {
            let change = match k {
                KeyChange::Created {
                    slot,
                    before,
                    after,
                } => event(Change::AccessKeyCreated, Some(slot), before, after),
                KeyChange::Deleted { slot, before } => {
                    event(Change::AccessKeyDeleted, Some(slot), before, None)
                }
                KeyChange::Toggled { slot, active } => {
                    let change = if active {
                        Change::AccessKeyActivated
                    } else {
                        Change::AccessKeyDeactivated
                    };
                    event(change, Some(slot), state(!active), state(active))
                }
            };
            out.push(change);
        }
        if n.is_root() {
            if let Some(used) = n.last_used {
                if o.last_used.is_none_or(|was| used > was) {
                    out.push(event(
                        Change::RootUsed,
                        None,
                        time(o.last_used),
                        time(Some(used)),
                    ));
                }
            }
        }
    }
    for o in &old.users {
        if !after.contains_key(&identity(o)) {
            out.push(Event {
                change: Change::UserDeleted,
                user: o.user.clone(),
                arn: o.arn.clone(),
                slot: None,
                before: time(o.created),
                after: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    fn key(active: bool, rotated: &str) -> KeyDigest {
        KeyDigest {
            exists: true,
            active,
            last_rotated: at(rotated),
        }
    }

    fn user(name: &str) -> UserDigest {
        UserDigest {
            user: name.into(),
            arn: format!("arn:aws:iam::111122223333:user/{name}"),
            created: at("2024-01-01T00:00:00Z"),
            password_enabled: Some(true),
            password_changed: at("2025-01-01T00:00:00Z"),
            mfa_active: true,
            keys: [key(true, "2025-06-01T00:00:00Z"), KeyDigest::default()],
            last_used: at("2026-01-01T00:00:00Z"),
        }
    }

    fn root() -> UserDigest {
        UserDigest {
            user: ROOT_USER.into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            password_enabled: None,
            password_changed: None,
            keys: [KeyDigest::default(), KeyDigest::default()],
            ..user("root")
        }
    }

    fn changes(old: Vec<UserDigest>, new: Vec<UserDigest>) -> Vec<(Change, String, Option<u8>)> {
        diff(
            &Digest {
                users: old,
                ..Digest::default()
            },
            &Digest {
                users: new,
                ..Digest::default()
            },
        )
        .into_iter()
        .map(|e| (e.change, e.user, e.slot))
        .collect()
    }

    fn one(change: Change, user: &str, slot: Option<u8>) -> Vec<(Change, String, Option<u8>)> {
        vec![(change, user.to_owned(), slot)]
    }

    #[test]
    fn the_same_report_changes_nothing() {
        let users = vec![root(), user("alice"), user("bob")];
        assert!(changes(users.clone(), users).is_empty());
    }

    #[test]
    fn created_and_deleted_users_are_one_event_each() {
        let mut new_user = user("carol");
        new_user.keys[1] = key(true, "2026-01-01T00:00:00Z");
        assert_eq!(
            changes(
                vec![user("alice"), user("bob")],
                vec![user("alice"), new_user]
            ),
            vec![
                (Change::UserCreated, "carol".to_owned(), None),
                (Change::UserDeleted, "bob".to_owned(), None),
            ]
        );
    }

    #[test]
    fn a_user_recreated_under_the_same_name_is_two_users() {
        let mut again = user("alice");
        again.created = at("2026-02-01T00:00:00Z");
        let events = diff(
            &Digest {
                users: vec![user("alice")],
                ..Digest::default()
            },
            &Digest {
                users: vec![again],
                ..Digest::default()
            },
        );
        let kinds: Vec<Change> = events.iter().map(|e| e.change).collect();
        assert_eq!(kinds, [Change::UserCreated, Change::UserDeleted]);
        assert_eq!(events[0].after.as_deref(), Some("2026-02-01T00:00:00Z"));
        assert_eq!(events[1].before.as_deref(), Some("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn mfa_changes() {
        let mut off = user("alice");
        off.mfa_active = false;
        assert_eq!(
            changes(vec![user("alice")], vec![off.clone()]),
            one(Change::MfaDisabled, "alice", None)
        );
        assert_eq!(
            changes(vec![off], vec![user("alice")]),
            one(Change::MfaEnabled, "alice", None)
        );
    }

    #[test]
    fn password_changes() {
        let mut none = user("alice");
        none.password_enabled = Some(false);
        none.password_changed = None;
        assert_eq!(
            changes(vec![user("alice")], vec![none.clone()]),
            one(Change::PasswordDisabled, "alice", None)
        );
        // Set where there was none: enabled only, not also changed.
        assert_eq!(
            changes(vec![none], vec![user("alice")]),
            one(Change::PasswordEnabled, "alice", None)
        );
        let mut changed = user("alice");
        changed.password_changed = at("2026-03-01T00:00:00Z");
        let events = diff(
            &Digest {
                users: vec![user("alice")],
                ..Digest::default()
            },
            &Digest {
                users: vec![changed],
                ..Digest::default()
            },
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].change, Change::PasswordChanged);
        assert_eq!(events[0].before.as_deref(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(events[0].after.as_deref(), Some("2026-03-01T00:00:00Z"));
    }

    #[test]
    fn root_not_supported_password_changes_nothing() {
        let mut newer = root();
        newer.password_enabled = Some(true);
        assert!(changes(vec![root()], vec![newer]).is_empty());
    }

    #[test]
    fn key_changes() {
        // A key in the empty slot 2: created only.
        let mut two = user("alice");
        two.keys[1] = key(true, "2026-01-01T00:00:00Z");
        assert_eq!(
            changes(vec![user("alice")], vec![two.clone()]),
            one(Change::AccessKeyCreated, "alice", Some(2))
        );
        // Slot 2 emptied.
        assert_eq!(
            changes(vec![two.clone()], vec![user("alice")]),
            one(Change::AccessKeyDeleted, "alice", Some(2))
        );
        // Deactivated, then activated again.
        let mut inactive = user("alice");
        inactive.keys[0].active = false;
        assert_eq!(
            changes(vec![user("alice")], vec![inactive.clone()]),
            one(Change::AccessKeyDeactivated, "alice", Some(1))
        );
        assert_eq!(
            changes(vec![inactive], vec![user("alice")]),
            one(Change::AccessKeyActivated, "alice", Some(1))
        );
        // Rotated in place: last_rotated moved, a new key.
        let mut rotated = user("alice");
        rotated.keys[0].last_rotated = at("2026-05-01T00:00:00Z");
        let events = diff(
            &Digest {
                users: vec![user("alice")],
                ..Digest::default()
            },
            &Digest {
                users: vec![rotated],
                ..Digest::default()
            },
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].change, Change::AccessKeyCreated);
        assert_eq!(events[0].before.as_deref(), Some("2025-06-01T00:00:00Z"));
        assert_eq!(events[0].after.as_deref(), Some("2026-05-01T00:00:00Z"));
        // A new key created inactive in an empty slot is created only.
        let mut created_inactive = user("alice");
        created_inactive.keys[1] = key(false, "2026-01-01T00:00:00Z");
        assert_eq!(
            changes(vec![user("alice")], vec![created_inactive]),
            one(Change::AccessKeyCreated, "alice", Some(2))
        );
    }

    #[test]
    fn a_key_that_moves_to_the_other_slot_is_the_same_key() {
        // Two keys; the first is deleted and AWS lists the second in slot 1.
        let mut two = user("alice");
        two.keys[1] = key(true, "2026-01-01T00:00:00Z");
        let mut moved = user("alice");
        moved.keys = [key(true, "2026-01-01T00:00:00Z"), KeyDigest::default()];
        let events = diff(
            &Digest {
                users: vec![two.clone()],
                ..Digest::default()
            },
            &Digest {
                users: vec![moved.clone()],
                ..Digest::default()
            },
        );
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].change, Change::AccessKeyDeleted);
        assert_eq!(events[0].slot, Some(1));
        assert_eq!(events[0].before.as_deref(), Some("2025-06-01T00:00:00Z"));
        // Moved and deactivated: one deactivation, in the slot it now has.
        let mut moved_off = moved.clone();
        moved_off.keys[0].active = false;
        let kinds: Vec<(Change, Option<u8>)> = diff(
            &Digest {
                users: vec![two],
                ..Digest::default()
            },
            &Digest {
                users: vec![moved_off],
                ..Digest::default()
            },
        )
        .into_iter()
        .map(|e| (e.change, e.slot))
        .collect();
        assert_eq!(
            kinds,
            [
                (Change::AccessKeyDeactivated, Some(1)),
                (Change::AccessKeyDeleted, Some(1))
            ]
        );
    }

    #[test]
    fn root_use_moving_forward_is_root_used() {
        let mut used = root();
        used.last_used = at("2026-06-01T00:00:00Z");
        let events = diff(
            &Digest {
                users: vec![root()],
                ..Digest::default()
            },
            &Digest {
                users: vec![used.clone()],
                ..Digest::default()
            },
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].change, Change::RootUsed);
        assert_eq!(events[0].user, ROOT_USER);
        assert_eq!(events[0].before.as_deref(), Some("2026-01-01T00:00:00Z"));
        // Never used before counts too; an older value (a stale report) does not.
        let mut never = root();
        never.last_used = None;
        assert_eq!(
            changes(vec![never], vec![used.clone()]),
            one(Change::RootUsed, ROOT_USER, None)
        );
        assert!(changes(vec![used], vec![root()]).is_empty());
        // A user's use is no event.
        let mut alice = user("alice");
        alice.last_used = at("2026-06-01T00:00:00Z");
        assert!(changes(vec![user("alice")], vec![alice]).is_empty());
    }

    #[test]
    fn root_gives_the_same_events_as_users() {
        let mut root_key = root();
        root_key.keys[0] = key(true, "2026-01-01T00:00:00Z");
        root_key.mfa_active = false;
        assert_eq!(
            changes(vec![root()], vec![root_key]),
            vec![
                (Change::MfaDisabled, ROOT_USER.to_owned(), None),
                (Change::AccessKeyCreated, ROOT_USER.to_owned(), Some(1)),
            ]
        );
    }

    #[test]
    fn change_names_are_the_fixed_set() {
        let names: Vec<&str> = Change::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "user_created",
                "user_deleted",
                "mfa_enabled",
                "mfa_disabled",
                "password_enabled",
                "password_disabled",
                "password_changed",
                "access_key_created",
                "access_key_deleted",
                "access_key_activated",
                "access_key_deactivated",
                "root_used"
            ]
        );
        assert_eq!(Change::COUNT, 12);
    }

    #[test]
    fn digests_round_trip_through_json() {
        let d = Digest {
            users: vec![root(), user("alice")],
            ..Digest::default()
        };
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&text).unwrap(), d);
    }
}
