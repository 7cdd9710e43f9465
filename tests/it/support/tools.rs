//! External programs for the tests: found on PATH (a missing one fails the test, it is never
//! skipped), run in a directory against a deadline, and killed when their guard drops, on
//! success, timeout or panic.
//!
//! Depends on nothing but std, so the pure suites (golden files) can use it without the
//! servers' helpers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `name` is on PATH; fails the test when it is not there.
pub fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: run the suite through scripts/test, which installs it")
        })
}

/// A command for the program `name` from PATH, failing the test (not skipping it) when the
/// program is missing.
pub fn tool(name: &str) -> Command {
    Command::new(which(name))
}

/// A child process that is killed, and reaped, when this guard drops.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a finished command printed, and how it exited.
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Both streams and the status, for failure messages.
    pub fn both(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` in `dir` with nothing on its standard input, killing it and failing the test if
/// it cannot start or does not finish within `timeout`.
pub fn run(cmd: Command, dir: &Path, timeout: Duration) -> Output {
    run_with_input(cmd, dir, None, timeout)
}

/// Like [`run`], writing `input` (when given) to the command's standard input and closing it.
pub fn run_with_input(
    mut cmd: Command,
    dir: &Path,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Output {
    let what = format!("{cmd:?}");
    let mut child = KillOnDrop(
        cmd.current_dir(dir)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}")),
    );
    let feed = input.map(|bytes| {
        let mut stdin = child.0.stdin.take().expect("piped stdin");
        let bytes = bytes.to_vec();
        // A separate thread, so a program that writes before it has read everything cannot
        // fill its output pipe and stall the test.
        thread::spawn(move || {
            // A program may exit without reading all of it; its status tells.
            let _ = stdin.write_all(&bytes);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.0.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.0.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("waiting for the child") {
            break status;
        }
        if Instant::now() > deadline {
            panic!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(feed) = feed {
        feed.join().expect("stdin writer");
    }
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
