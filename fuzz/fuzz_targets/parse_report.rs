//! Any bytes through the whole pipeline a refresh runs: parse, and when the header is usable,
//! judge and render with per-user series on. Nothing may panic, and the counts the metrics
//! report must agree with the parsed rows.
#![no_main]

use chrono::{DateTime, Utc};
use iam_credential_report::judge::{judge, Check, Thresholds};
use iam_credential_report::expose::{compose, render_report, RenderOptions};
use iam_credential_report::report::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = parse(data) else {
        return;
    };
    // A fixed clock keeps a crash reproducible from its input alone.
    let now: DateTime<Utc> = DateTime::from_timestamp(1_795_000_000, 0).expect("valid time");
    let assessment = judge(&report, now, &Thresholds::default());
    let per_user = RenderOptions::all_users();
    let bodies = render_report("123456789012", &report, &assessment, None, now, &per_user);
    let text = compose([&bodies]);
    let users = report.users().count();
    assert!(
        text.contains(&format!(
            "aws_iam_users{{account_id=\"123456789012\"}} {users}\n"
        )),
        "aws_iam_users does not say {users}"
    );
    for check in Check::ALL {
        let findings = assessment.findings.iter().filter(|f| f.check == check).count();
        assert_eq!(assessment.count(check), findings as u64, "{}", check.name());
    }
});
