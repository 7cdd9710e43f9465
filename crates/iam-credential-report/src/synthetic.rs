//! Synthetic credential reports for benchmarks, load tests and property tests: realistic mixes
//! of console users, keys in every state, sentinels and both timestamp styles. Deterministic
//! for a given seed.

use chrono::{DateTime, TimeDelta, Utc};
use std::fmt::Write;

/// The 22 columns of a current report, plus `additional_credentials_info`.
pub const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated,additional_credentials_info";

/// A small deterministic generator (SplitMix64), so reports are reproducible without a
/// random-number dependency in the library.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn stamp(out: &mut String, t: DateTime<Utc>, zulu: bool) {
    if zulu {
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"));
    } else {
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S+00:00"));
    }
}

/// A report for account `account_id` with a root row and `users` IAM users, as of `now`.
pub fn report(account_id: &str, users: usize, now: DateTime<Utc>, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(64 + users * 330);
    out.push_str(HEADER);
    out.push('\n');
    let ago = |rng: &mut Rng, max_days: u64| {
        now - TimeDelta::seconds(rng.below(max_days * 86_400) as i64 + 60)
    };
    let _ = writeln!(
        out,
        "<root_account>,arn:aws:iam::{account_id}:root,2015-01-01T00:00:00+00:00,not_supported,{},not_supported,not_supported,{},false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0",
        ago(&mut rng, 400).format("%Y-%m-%dT%H:%M:%SZ"),
        rng.chance(90)
    );
    for i in 0..users {
        let zulu = rng.chance(50);
        let name = format!("user-{i:06}");
        let _ = write!(
            out,
            "{name},arn:aws:iam::{account_id}:user/team-{}/{name},",
            i % 17
        );
        let created = ago(&mut rng, 1500);
        stamp(&mut out, created, zulu);
        let console = rng.chance(60);
        if console {
            out.push_str(",true,");
            match rng.below(10) {
                0 => out.push_str("no_information"),
                1 => out.push_str("N/A"),
                _ => stamp(&mut out, ago(&mut rng, 200), zulu),
            }
            out.push(',');
            stamp(&mut out, ago(&mut rng, 400), zulu);
            out.push_str(",N/A,");
        } else {
            out.push_str(",false,N/A,N/A,N/A,");
        }
        out.push_str(if rng.chance(70) { "true" } else { "false" });
        for _slot in 0..2 {
            match rng.below(3) {
                0 => out.push_str(",false,N/A,N/A,N/A,N/A"),
                n => {
                    out.push_str(if n == 1 { ",true," } else { ",false," });
                    stamp(&mut out, ago(&mut rng, 800), zulu);
                    if rng.chance(25) {
                        out.push_str(",N/A,N/A,N/A");
                    } else {
                        out.push(',');
                        stamp(&mut out, ago(&mut rng, 300), zulu);
                        out.push_str(",us-east-1,s3");
                    }
                }
            }
        }
        out.push_str(",false,N/A,false,N/A,0\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_reports_parse_completely() {
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let text = report("123456789012", 500, now, 7);
        let r = crate::report::parse(text.as_bytes()).unwrap();
        assert_eq!(r.users().count(), 500);
        assert!(r.root().is_some());
        assert!(
            r.skipped.is_empty(),
            "{:?}",
            &r.skipped[..r.skipped.len().min(3)]
        );
        assert_eq!(report("123456789012", 500, now, 7), text, "deterministic");
        let a = crate::judge::judge(&r, now, &crate::judge::Thresholds::default());
        for &c in crate::judge::Check::ALL {
            // Root's checks hinge on a single row.
            if !c.name().starts_with("root_") {
                assert!(a.count(c) > 0, "{} never fails in synthetic data", c.name());
            }
        }
    }
}
