//! The HTTP server: landing page, telemetry path, health and readiness.
//!
//! It only reads what the hub last published. Tests start it on `127.0.0.1:0` through
//! [`serve`] with a listener they bound themselves.

use crate::hub::{Hub, Published};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The Prometheus text exposition format's content type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How the server behaves toward clients.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where metrics are served (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// At most this many connections are served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long shutdown waits for open connections to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            telemetry_path: "/metrics".to_owned(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves HTTP on `listener` until `shutdown` is cancelled, then lets open connections finish
/// (up to the grace period).
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    settings: ServerSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let settings = Arc::new(settings);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(16 * 1024)
        .keep_alive(true);

    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
        };
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
        let hub = hub.clone();
        let settings = settings.clone();
        let service = service_fn(move |req| {
            let response = handle(&req, &hub.published(), &settings, peer);
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "Connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::info!("Closing connections still open after the shutdown grace period");
        }
    }
    Ok(())
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Whether the client accepts gzip (`Accept-Encoding`, honouring `q=0`).
pub fn accepts_gzip(accept_encoding: Option<&HeaderValue>) -> bool {
    let Some(value) = accept_encoding.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn handle(
    req: &Request<Incoming>,
    published: &Published,
    settings: &ServerSettings,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    // Nothing here takes a body; refuse one rather than read it.
    let has_body =
        req.body().size_hint().lower() > 0 || req.headers().contains_key(header::TRANSFER_ENCODING);
    tracing::trace!(%peer, method = %req.method(), path, "Request");

    let known = path == settings.telemetry_path || matches!(path, "/" | "/-/healthy" | "/-/ready");
    if !known {
        return text(StatusCode::NOT_FOUND, "Not found\n");
    }
    if !read_only {
        return method_not_allowed("GET, HEAD");
    }
    if has_body {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request bodies are not accepted\n",
        );
    }

    if path == settings.telemetry_path {
        let gzip = accepts_gzip(req.headers().get(header::ACCEPT_ENCODING));
        let body = if gzip {
            published.metrics_gzip.clone()
        } else {
            published.metrics.clone()
        };
        let mut r = Response::new(Full::new(body));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        return r;
    }
    match path {
        "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
        "/-/ready" if published.ready => text(StatusCode::OK, "Ready\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: no credential report has been judged yet\n",
        ),
        _ => {
            let mut r = Response::new(Full::new(published.landing.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let v = |s: &'static str| Some(HeaderValue::from_static(s));
        assert!(accepts_gzip(v("gzip").as_ref()));
        assert!(accepts_gzip(v("deflate, GZIP;q=0.5").as_ref()));
        assert!(accepts_gzip(v("*").as_ref()));
        assert!(!accepts_gzip(v("gzip;q=0").as_ref()));
        assert!(!accepts_gzip(v("identity").as_ref()));
        assert!(!accepts_gzip(None));
    }
}
