//! `iam-credentials-exporter checks`: print the catalogue of checks. Everything here is read
//! from the core crate's catalogue, which the README's table and `check` use too.

use crate::cli::{CatalogueFormat, ChecksArgs};
use iam_credential_report::catalogue::{Entry, CATALOGUE};
use std::process::ExitCode;

/// The catalogue as an aligned table: one block per check, so that long remediations stay
/// readable in a terminal.
pub fn table(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let cis: Vec<String> = e.cis.iter().map(|(v, id)| format!("v{v} {id}")).collect();
        let rows = [
            ("title", e.title.to_owned()),
            ("severity", e.severity.as_str().to_owned()),
            ("from", e.basis.as_str().to_owned()),
            ("fails when", e.fails_when.to_owned()),
            ("default", e.threshold.unwrap_or("-").to_owned()),
            (
                "Security Hub",
                if e.security_hub.is_empty() {
                    "-".to_owned()
                } else {
                    e.security_hub.join(", ")
                },
            ),
            (
                "CIS",
                if cis.is_empty() {
                    "-".to_owned()
                } else {
                    cis.join(", ")
                },
            ),
            ("AWS Config", e.config_rule.unwrap_or("-").to_owned()),
            ("remediation", e.remediation.to_owned()),
        ];
        out.push_str(e.id);
        out.push('\n');
        for (name, value) in rows {
            out.push_str(&format!("  {name:<13} {value}\n"));
        }
        out.push('\n');
    }
    out
}

/// Runs `checks`.
pub fn run(args: &ChecksArgs) -> ExitCode {
    let text = match args.output {
        CatalogueFormat::Table => table(&CATALOGUE),
        CatalogueFormat::Json => {
            serde_json::to_string_pretty(&CATALOGUE[..]).expect("serialising the catalogue") + "\n"
        }
        CatalogueFormat::Markdown => iam_credential_report::catalogue::markdown_table(),
    };
    if crate::cli::print(&text) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_check_with_its_remediation() {
        let text = table(&CATALOGUE);
        for e in &CATALOGUE {
            assert!(text.contains(&format!("{}\n  title", e.id)), "{}", e.id);
            assert!(text.contains(e.remediation));
        }
        assert!(text.contains("CIS           v1.4 1.4, v1.5 1.4"));
    }
}
