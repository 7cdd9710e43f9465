//! The `iam-credentials-exporter` binary: parse flags, run, report errors.
#![forbid(unsafe_code)]

use iam_credentials_exporter::cli::{Cli, Command};
use iam_credentials_exporter::{cli, daemon};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    match &cli.command {
        Some(Command::Check(args)) => return cli::check::run(args, &cli),
        Some(Command::Checks(args)) => return cli::checks::run(args),
        Some(Command::Diff(args)) => return cli::diff::run(args, &cli),
        None => {}
    }
    if cli.serve.config_check {
        return match daemon::check_config(&cli) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    daemon::init_logging(&cli.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, as a log line: logging is set up by now.
            tracing::error!(error = format!("{e:#}"), "Exiting");
            ExitCode::FAILURE
        }
    }
}
