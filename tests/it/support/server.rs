//! A server program the test starts as a child process (moto, Prometheus, Alertmanager), on a
//! private loopback address ([`Loopback`]), with its output kept for failure messages.
//!
//! It is ready when its own readiness probe answers while the child is still running: the
//! address is private, so the answer can only come from this child. If the child exits first,
//! or the probe never answers, the test fails with what the child printed; there is no retry
//! on another address.

use super::loopback::Loopback;
use super::tools::KillOnDrop;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running server process, killed on drop, then its address released.
pub struct ServerProcess {
    /// Killed first (fields drop in declaration order): the address is let go of only once
    /// nothing listens on it.
    child: KillOnDrop,
    /// What it is, for messages.
    what: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Lines of its standard error and output, as they came.
    logs: Arc<Mutex<Vec<String>>>,
    /// The threads copying its output into `logs`.
    readers: Vec<JoinHandle<()>>,
    _address: Loopback,
}

impl ServerProcess {
    /// Claims a private address, starts the command `command` builds for it (the program must
    /// listen on exactly that address), and waits up to `timeout` until `ready` (given the
    /// address) says yes while the child runs.
    pub fn start(
        what: &str,
        timeout: Duration,
        command: impl FnOnce(SocketAddr) -> Command,
        mut ready: impl FnMut(SocketAddr) -> bool,
    ) -> ServerProcess {
        let address = Loopback::claim();
        let addr = address.free_addr();
        let mut cmd = command(addr);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what} ({cmd:?}): {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            copy_lines(child.stderr.take().expect("piped stderr"), &logs),
            copy_lines(child.stdout.take().expect("piped stdout"), &logs),
        ];
        let mut server = ServerProcess {
            child: KillOnDrop(child),
            what: what.to_owned(),
            addr,
            logs,
            readers,
            _address: address,
        };
        let deadline = Instant::now() + timeout;
        loop {
            server.fail_if_exited("before it was ready");
            // Alive before and after the answer: it was this child that gave it.
            if ready(addr) {
                server.fail_if_exited("while it answered its readiness check");
                return server;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} was not ready on {addr} after {timeout:?}; its output:\n{}",
                    server.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything it printed so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Its last `n` lines of output.
    pub fn last_logs(&self, n: usize) -> String {
        let logs = self.logs.lock().unwrap();
        logs[logs.len().saturating_sub(n)..].join("\n")
    }

    /// Fails the test, with the child's whole output, when the child has exited.
    fn fail_if_exited(&mut self, when: &str) {
        let Some(status) = self.child.0.try_wait().expect("waiting for the child") else {
            return;
        };
        // Its pipes are closed (or held by a child of its own): take what is left.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.readers.iter().all(JoinHandle::is_finished) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{} exited with {status} {when}, on {}; its output:\n{}",
            self.what,
            self.addr,
            self.logs()
        );
    }
}

/// Copies `stream` into `logs` line by line, on a thread of its own.
fn copy_lines(
    stream: impl Read + Send + 'static,
    logs: &Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    })
}
