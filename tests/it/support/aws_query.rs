//! IAM's awsQuery wire format, for the fake IAM endpoints of the tests
//! (`tests/it/aws_faults.rs`) and the soak benchmark (`examples/fake_iam.rs`): requests are
//! forms with `Action=...`, answers are `<{Action}Response>` documents, errors
//! `<ErrorResponse>` documents.
//!
//! `examples/fake_iam.rs` includes this file by its path.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// The namespace of IAM's answers.
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Reads a request's form-encoded body and returns its `Action` (empty when it has none).
pub async fn action_of(req: Request<Incoming>) -> String {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("")
        .to_owned()
}

/// A successful answer to `action` carrying `inner` as its result.
pub fn result_document(action: &str, inner: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{inner}</{action}Result>\
         <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// An error answer with AWS's error `code` and `message`.
pub fn error_document(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
    )
}

/// An HTTP response with an XML body.
pub fn xml_response(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}
