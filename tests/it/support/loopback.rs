//! Private loopback addresses for the servers the tests start as child processes (moto,
//! Prometheus, Alertmanager), and for endpoints where nothing may listen.
//!
//! A port chosen by binding 127.0.0.1:0 and letting it go can be taken by another test before
//! the child binds it; the child then dies, and a readiness check can be answered by the other
//! test's server. Here each server gets an address of its own from 127.0.0.0/8 (Linux routes
//! all of it to `lo`), claimed for as long as the server lives: the claim is a listening socket
//! on the address's port [`CLAIM_PORT`], which no second claimer can bind, in this process or
//! in another. Nobody else binds on a claimed address, so a port the kernel reports free
//! there stays free until the child takes it.
//!
//! Candidates are 127.<1 + pid % 250>.<n / 250>.<1 + n % 250> for this process's counter n, so
//! two test processes rarely even try the same one; when they do, the claim settles it. The
//! second octet is never 0: 127.0.0.0/16 (127.0.0.1 above all) is left to everything else.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The port of an address's claim. Below the kernel's ephemeral range, so ports chosen by
/// binding port 0 never land on it (and they could not: it is bound).
pub const CLAIM_PORT: u16 = 1024;

/// Candidates a process tries before it gives up (every address of its /16).
const CANDIDATES: u32 = 250 * 256;

/// This process's next candidate.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback address no one else uses while this value lives.
pub struct Loopback {
    ip: Ipv4Addr,
    /// Held, never accepted on: its presence is the claim.
    _claim: TcpListener,
}

impl Loopback {
    /// Claims the next address free of other claims.
    pub fn claim() -> Loopback {
        let pid = std::process::id();
        for _ in 0..CANDIDATES {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) % CANDIDATES;
            let ip = Ipv4Addr::new(
                127,
                1 + (pid % 250) as u8,
                (n / 250) as u8,
                1 + (n % 250) as u8,
            );
            match TcpListener::bind((ip, CLAIM_PORT)) {
                Ok(claim) => return Loopback { ip, _claim: claim },
                // Another test process holds it.
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) => panic!(
                    "cannot bind {ip}:{CLAIM_PORT} ({e}): the tests need every address of \
                     127.0.0.0/8 on the loopback interface, as Linux has it"
                ),
            }
        }
        panic!(
            "no address of 127.{}.0.0/16 is free to claim: each has its port {CLAIM_PORT} taken \
             (by other test processes, or by a listener on every interface)",
            1 + pid % 250
        );
    }

    /// A socket address on this address with a port that no socket uses: the kernel's choice
    /// for port 0, let go. It stays free for a child to bind, because only the holder of the
    /// claim binds here; and nothing answers on it until something does.
    pub fn free_addr(&self) -> SocketAddr {
        let listener = TcpListener::bind((self.ip, 0))
            .unwrap_or_else(|e| panic!("binding a port on {}: {e}", self.ip));
        listener.local_addr().expect("a bound address")
    }
}
