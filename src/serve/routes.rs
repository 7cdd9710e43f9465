//! The routes: the telemetry path, the landing page, health and readiness, and `/-/reload`,
//! behind the web configuration's rate limit, basic authentication and headers. Every route
//! is served under the route prefix (`--web.route-prefix`): `/iam/metrics`, `/iam/` for the
//! landing page (`/iam` redirects there), and nothing outside it.

use super::basic_auth::Outcome;
use super::body::ResponseBody;
use super::landing;
use super::web_config::WebConfig;
use super::{Reload, ServerSettings, Shared, METRICS_CONTENT_TYPE};
use crate::state::Store;
use bytes::Bytes;
use chrono::Utc;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::{Body, Incoming};
use std::net::SocketAddr;
use std::sync::Arc;

/// Applies the web configuration (rate limit, authentication, headers) around [`handle`].
pub(super) async fn respond(
    req: Request<Incoming>,
    shared: &Shared,
    peer: SocketAddr,
    nth: u32,
) -> Response<ResponseBody> {
    let config: Arc<WebConfig> = shared.settings.web.current();
    let route = route(req.uri().path(), &shared.settings.route_prefix);
    let probe = matches!(route, Some("/-/healthy" | "/-/ready"));
    let mut response = if probe {
        handle(&req, route, &shared.store, &shared.settings, peer)
    } else if config.rate_limit.as_ref().is_some_and(|r| !r.allow()) {
        text(StatusCode::TOO_MANY_REQUESTS, "Too many requests\n")
    } else {
        let refused = match &config.auth {
            Some(auth) => {
                auth.check(req.headers().get(header::AUTHORIZATION)).await == Outcome::Refused
            }
            None => false,
        };
        if refused {
            tracing::debug!(%peer, "Basic authentication failed");
            unauthorized()
        } else if route == Some("/-/reload") && shared.settings.reload.is_some() {
            reload(&req, shared.settings.reload.as_ref()).await
        } else {
            handle(&req, route, &shared.store, &shared.settings, peer)
        }
    };
    let headers = response.headers_mut();
    for (name, value) in &config.headers {
        headers.insert(name, value.clone());
    }
    if nth >= shared.settings.max_requests_per_connection {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The route a request path asks for: the path with the route prefix taken off (`/` is the
/// landing page); `Some("")` for the prefix alone, `None` for a path outside the prefix.
fn route<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Sends the prefix alone (`/iam`) to the landing page (`/iam/`), so that the page's relative
/// links resolve under the prefix. The location is relative too (`./iam/`), so that it holds
/// behind a proxy that rewrites the host.
fn to_landing_page(path: &str) -> Response<ResponseBody> {
    let last = path.rsplit('/').next().unwrap_or("");
    let mut r = text(StatusCode::FOUND, "Found\n");
    if let Ok(location) = HeaderValue::from_str(&format!("./{last}/")) {
        r.headers_mut().insert(header::LOCATION, location);
    }
    r
}

/// `POST /-/reload` (or PUT), as in Prometheus: re-reads the config file and the web config;
/// 200 when the config file was applied, 500 with the error (it names the bad key) when it
/// was refused and the running configuration kept.
async fn reload(
    req: &Request<Incoming>,
    handle: Option<&Arc<dyn Reload>>,
) -> Response<ResponseBody> {
    let Some(handle) = handle else {
        return text(StatusCode::NOT_FOUND, "Not found\n");
    };
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return method_not_allowed("POST, PUT");
    }
    match handle.reload().await {
        Ok(()) => text(StatusCode::OK, "Reloaded\n"),
        Err(e) => {
            let mut r = Response::new(ResponseBody::full(Bytes::from(format!(
                "failed to reload config: {e}\n"
            ))));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::full(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn unauthorized() -> Response<ResponseBody> {
    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"iam-credentials-exporter\""),
    );
    r
}

fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
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

/// Answers the route `route` (see [`route`]) of `req`.
fn handle(
    req: &Request<Incoming>,
    route: Option<&str>,
    store: &Store,
    settings: &ServerSettings,
    peer: SocketAddr,
) -> Response<ResponseBody> {
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    // Nothing here takes a body; refuse one rather than read it.
    let has_body =
        req.body().size_hint().lower() > 0 || req.headers().contains_key(header::TRANSFER_ENCODING);
    tracing::trace!(%peer, method = %req.method(), path = req.uri().path(), "Request");

    let Some(path) = route else {
        return text(StatusCode::NOT_FOUND, "Not found\n");
    };
    let known =
        path == settings.telemetry_path || matches!(path, "" | "/" | "/-/healthy" | "/-/ready");
    if !known {
        return text(StatusCode::NOT_FOUND, "Not found\n");
    }
    if !read_only {
        return method_not_allowed("GET, HEAD");
    }
    if path.is_empty() {
        return to_landing_page(req.uri().path());
    }
    if has_body {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request bodies are not accepted\n",
        );
    }

    let published = store.published();
    if path == settings.telemetry_path {
        let gzip = accepts_gzip(req.headers().get(header::ACCEPT_ENCODING));
        // The snapshot composed in advance, then the process series read now.
        let tail = super::process::series();
        let snapshot = &published.metrics_gzip;
        let body = if gzip {
            ResponseBody::pieces(snapshot.finish(tail.as_bytes()))
        } else {
            ResponseBody::inflating(snapshot.inflater(), snapshot.text_len(), tail.into())
        };
        let mut r = Response::new(body);
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
            // Rendered per request, so that "(5m ago)" is as of now.
            let page = landing::render(
                &store.accounts(),
                &store.judge_settings(),
                &settings.telemetry_path,
                Utc::now(),
            );
            let mut r = Response::new(ResponseBody::full(Bytes::from(page)));
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

    #[test]
    fn routes_are_served_under_the_prefix_only() {
        assert_eq!(route("/metrics", ""), Some("/metrics"));
        assert_eq!(route("/", ""), Some("/"));
        assert_eq!(route("/iam/metrics", "/iam"), Some("/metrics"));
        assert_eq!(route("/iam/", "/iam"), Some("/"));
        assert_eq!(route("/iam/-/reload", "/iam"), Some("/-/reload"));
        assert_eq!(route("/iam", "/iam"), Some(""));
        assert_eq!(route("/iamx/metrics", "/iam"), None);
        assert_eq!(route("/metrics", "/iam"), None);
        assert_eq!(route("/", "/a/b"), None);
        let r = to_landing_page("/a/iam");
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[header::LOCATION], "./iam/");
    }
}
