//! The HTTP server: landing page, telemetry path, health and readiness, over plain HTTP or
//! TLS, with basic authentication, as the web configuration ([`web_config`]) says. Routes are in [`routes`];
//! the accept loop and the connection table here.
//!
//! It only reads what the state last published. Tests start it on `127.0.0.1:0` through the
//! real binary.
//!
//! Hostile clients are bounded, each in one place:
//! - TLS handshake and request headers must each arrive within `header_read_timeout`
//!   (a client trickling bytes is cut off when the deadline passes, not when it goes
//!   quiet); an idle keep-alive connection gets the same deadline for its next request.
//! - A write that makes no progress for `write_timeout` closes the connection (a client that
//!   never reads its response).
//! - Request heads are limited to [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] (431 beyond), a
//!   connection serves at most `max_requests_per_connection` requests, then `Connection:
//!   close`; bodies are refused (413) and so are methods other than GET and HEAD (405).
//! - At most `max_connections` connections are open. Accepting never waits: when the table
//!   is full, the connection that has been quiet the longest (no byte read or written) is
//!   closed to make room. Idle and slow connections therefore cannot starve a scrape, and
//!   memory stays bounded by `max_connections` times the per-connection buffers.
//!
//! Health endpoints (`/-/healthy`, `/-/ready`) answer without basic authentication and
//! without counting against `rate_limit`, so that probes work; TLS applies to them as to
//! everything else. Responses never carry error details: those go to the log at debug level,
//! with the peer address and never a credential or header value. (The landing page shows each
//! account's last refresh error, for operators: [`landing`] says why.)
//!
//! Every route is served under `route_prefix` (`--web.route-prefix`, or the path of
//! `--web.external-url`), as Prometheus does; the landing page's links are relative.

pub mod basic_auth;
pub mod body;
pub mod landing;
pub mod process;
pub mod rate_limit;
pub mod routes;
mod setting;
pub mod tls;
pub mod web_config;

use crate::state::Store;
use crate::BoxFuture;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use routes::respond;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use web_config::WebState;

/// The Prometheus text exposition format's content type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The largest request head (request line and headers) read, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The most request headers accepted.
pub const MAX_HEADERS: usize = 64;

/// How the server behaves toward clients.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where metrics are served (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// The prefix every route is served under (`--web.route-prefix`, else the path of
    /// `--web.external-url`): `""` for none, else `/` and segments, no trailing `/`. The
    /// landing page is at the prefix with a `/`, and the prefix alone redirects there.
    pub route_prefix: String,
    /// How long a client may take for the TLS handshake, and then for each request's headers
    /// (`--web.header-read-timeout`).
    pub header_read_timeout: Duration,
    /// How long a write to a client may make no progress.
    pub write_timeout: Duration,
    /// At most this many connections are open; more close the quietest one.
    pub max_connections: usize,
    /// A connection is closed after serving this many requests.
    pub max_requests_per_connection: u32,
    /// How long shutdown waits for open connections to finish.
    pub shutdown_grace: Duration,
    /// TLS, authentication and headers, reloadable.
    pub web: Arc<WebState>,
    /// What `POST /-/reload` reloads; without it, the route does not exist.
    pub reload: Option<Arc<dyn Reload>>,
}

/// Why a reload was refused, as the reloader words it (it names the file and the key).
pub type RefusedReload = Box<dyn std::error::Error + Send + Sync>;

/// What `POST /-/reload` asks for: re-read the configuration and say whether it was applied.
/// The daemon hands an implementation in, so the server never reaches into collection.
pub trait Reload: Send + Sync + 'static {
    /// Reloads, and resolves once the outcome is known.
    fn reload(&self) -> BoxFuture<'_, Result<(), RefusedReload>>;
}

impl std::fmt::Debug for dyn Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reload")
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            telemetry_path: "/metrics".to_owned(),
            route_prefix: String::new(),
            header_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_requests_per_connection: 1000,
            shutdown_grace: Duration::from_secs(5),
            web: Arc::new(WebState::plain()),
            reload: None,
        }
    }
}

/// When a connection last read or wrote a byte, in milliseconds since the table's epoch.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    last: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

struct Entry {
    activity: Arc<Activity>,
    evict: CancellationToken,
}

/// The open connections, to close the quietest when the table is full.
struct Connections {
    epoch: Instant,
    max: usize,
    table: Mutex<Table>,
}

struct Table {
    next: u64,
    open: HashMap<u64, Entry>,
    last_warning: Option<Instant>,
}

/// A connection's place in the table, given up on drop.
struct Admitted {
    connections: Arc<Connections>,
    id: u64,
    activity: Arc<Activity>,
    evict: CancellationToken,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut table = self
            .connections
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        table.open.remove(&self.id);
    }
}

impl Connections {
    fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            epoch: Instant::now(),
            max: max.max(1),
            table: Mutex::new(Table {
                next: 0,
                open: HashMap::new(),
                last_warning: None,
            }),
        })
    }

    /// Takes a place for a new connection, closing the quietest one if the table is full.
    fn admit(self: &Arc<Self>) -> Admitted {
        let activity = Arc::new(Activity {
            epoch: self.epoch,
            last: AtomicU64::new(0),
        });
        activity.touch();
        let evict = CancellationToken::new();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.open.len() >= self.max {
            let quietest = table
                .open
                .iter()
                .min_by_key(|(_, e)| e.activity.last())
                .map(|(id, _)| *id);
            if let Some(entry) = quietest.and_then(|id| table.open.remove(&id)) {
                entry.evict.cancel();
            }
            let now = Instant::now();
            if table
                .last_warning
                .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
            {
                table.last_warning = Some(now);
                tracing::warn!(
                    max_connections = self.max,
                    "Connection limit reached: closing the connections quiet the longest"
                );
            }
        }
        let id = table.next;
        table.next += 1;
        table.open.insert(
            id,
            Entry {
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        Admitted {
            connections: self.clone(),
            id,
            activity,
            evict,
        }
    }
}

/// A stream that records activity and gives up on writes that make no progress.
struct Guarded<S> {
    inner: S,
    activity: Arc<Activity>,
    write_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> Guarded<S> {
    fn new(inner: S, activity: Arc<Activity>, write_timeout: Duration) -> Self {
        Guarded {
            inner,
            activity,
            write_timeout,
            stalled: None,
        }
    }

    /// Called when a write is pending: errors once it has been pending too long.
    fn stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed(&mut self) {
        self.stalled = None;
        self.activity.touch();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                self.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stall(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => self.stall(cx).map(Err),
        }
    }
}

/// What every connection task shares.
struct Shared {
    store: Arc<Store>,
    settings: ServerSettings,
    http: hyper::server::conn::http1::Builder,
}

/// Serves HTTP on `listener` until `shutdown` is cancelled, then lets open connections finish
/// (up to the grace period).
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    settings: ServerSettings,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let connections = Connections::new(settings.max_connections);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let grace = settings.shutdown_grace;
    let shared = Arc::new(Shared {
        store,
        settings,
        http,
    });

    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Responses go out in several writes (head, then the snapshot's pieces): without
        // this, Nagle's algorithm holds the last small one back until the client's delayed
        // acknowledgement, tens of milliseconds per scrape on a kept-alive connection.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, peer = %peer, "Setting TCP_NODELAY failed");
        }
        let admitted = connections.admit();
        let watcher = graceful.watcher();
        tokio::spawn(connection(stream, peer, shared.clone(), admitted, watcher));
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::info!("Closing connections still open after the shutdown grace period");
        }
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    admitted: Admitted,
    watcher: Watcher,
) {
    let io = Guarded::new(
        stream,
        admitted.activity.clone(),
        shared.settings.write_timeout,
    );
    tokio::select! {
        _ = admitted.evict.cancelled() => {
            tracing::debug!(%peer, "Closed a quiet connection to make room");
        }
        _ = serve_connection(io, peer, shared.clone(), watcher) => {}
    }
    drop(admitted);
}

async fn serve_connection(
    io: Guarded<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    watcher: Watcher,
) {
    let config = shared.settings.web.current();
    let Some(tls) = config.tls.clone() else {
        return http(io, peer, shared, watcher).await;
    };
    drop(config);
    let handshake = async move {
        let mut first = [0u8; 1];
        if io.inner.peek(&mut first).await? == 0 {
            return Ok(None);
        }
        // A TLS connection opens with a handshake record (22); anything else is most likely
        // plain HTTP: answer it in plain HTTP rather than with TLS garbage.
        if first[0] != 22 {
            refuse_plain_http(io).await;
            return Ok(None);
        }
        tokio_rustls::TlsAcceptor::from(tls)
            .accept(io)
            .await
            .map(Some)
    };
    match tokio::time::timeout(shared.settings.header_read_timeout, handshake).await {
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Ok(Ok(None)) => {}
        Ok(Ok(Some(stream))) => http(stream, peer, shared, watcher).await,
    }
}

/// Answers a plain HTTP request sent to the TLS port with 400, as Go's servers do.
async fn refuse_plain_http(mut io: Guarded<TcpStream>) {
    // Read the request head first (bounded), so that closing does not reset the connection
    // before the client has read the answer.
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while head.len() < MAX_HEAD_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    const BODY: &str = "Client sent an HTTP request to an HTTPS server.\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = io.write_all(answer.as_bytes()).await;
    let _ = io.shutdown().await;
}

async fn http<I>(io: I, peer: SocketAddr, shared: Arc<Shared>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicU32::new(0));
    let service_shared = shared.clone();
    let service = service_fn(move |req| {
        let shared = service_shared.clone();
        let nth = served.fetch_add(1, Ordering::Relaxed) + 1;
        async move { Ok::<_, Infallible>(respond(req, &shared, peer, nth).await) }
    });
    let conn = shared.http.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "Connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_closes_the_quietest_connection() {
        let c = Connections::new(2);
        let a = c.admit();
        std::thread::sleep(Duration::from_millis(5));
        let b = c.admit();
        std::thread::sleep(Duration::from_millis(5));
        a.activity.touch(); // a spoke last; b is now the quietest
        let _third = c.admit();
        assert!(b.evict.is_cancelled());
        assert!(!a.evict.is_cancelled());
        assert_eq!(c.table.lock().unwrap().open.len(), 2);
        drop(b); // already gone from the table: dropping it changes nothing
        assert_eq!(c.table.lock().unwrap().open.len(), 2);
        drop(a);
        assert_eq!(c.table.lock().unwrap().open.len(), 1);
    }

    #[tokio::test]
    async fn a_write_that_makes_no_progress_times_out() {
        // A duplex pipe with a tiny buffer that nobody reads.
        let (client, _server_side) = tokio::io::duplex(16);
        let activity = Arc::new(Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        });
        let mut io = Guarded::new(client, activity, Duration::from_millis(100));
        let e = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
