//! Every input in `tests/fixtures/fuzz-corpus/` (the minimised corpus of `scripts/fuzz`: the
//! inputs that reached new code in the parser, judge and renderer) goes through parse, judge
//! and render, per-user series on and off. None may panic; each failure names its file.

use iam_credential_report::expose::{compose, render_report, RenderOptions};
use iam_credential_report::judge::{judge, Thresholds};
use iam_credential_report::report::parse;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

fn pipeline(input: &[u8]) {
    let Ok(report) = parse(input) else {
        return;
    };
    let now = "2026-11-25T00:00:00Z".parse().unwrap();
    let assessment = judge(&report, now, &Thresholds::default());
    for opts in [RenderOptions::all_users(), RenderOptions::default()] {
        let bodies = render_report("123456789012", &report, &assessment, None, now, &opts);
        let text = compose([&bodies]);
        let users = report.users().count();
        assert!(text.contains(&format!(
            "aws_iam_users{{account_id=\"123456789012\"}} {users}\n"
        )));
    }
}

#[test]
fn the_fuzz_corpus_goes_through_without_a_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the corpus has only {} files",
        files.len()
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let input = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| pipeline(&input))).is_err()
        })
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(failed.is_empty(), "panicked on {failed:?}");
}
