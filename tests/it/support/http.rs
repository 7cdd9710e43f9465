//! A plain HTTP client for the tests: any method, any headers, every status code returned
//! rather than treated as an error.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::time::Duration;

/// An HTTP response.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, lower-cased names.
    pub headers: HashMap<String, String>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends a request with any method and headers; never fails on a status code, fails the test
/// when no answer comes.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    try_request(method, url, headers, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// GET.
pub fn get(url: &str) -> Reply {
    request("GET", url, &[])
}

/// The status of a GET of `url`, or `None` when nothing answered within a couple of seconds:
/// for readiness checks, which poll until their server answers.
pub fn probe(url: &str) -> Option<u16> {
    try_request("GET", url, &[], Duration::from_secs(2))
        .ok()
        .map(|r| r.status)
}

fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Reply, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = agent.run(req.body(()).unwrap())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Reads an HTTP/1.1 message head and its Content-Length body.
pub fn read_message(
    r: &mut std::io::BufReader<std::net::TcpStream>,
) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok((head, body))
}
