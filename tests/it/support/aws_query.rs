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
    form_of(req)
        .await
        .into_iter()
        .find_map(|(k, v)| (k == "Action").then_some(v))
        .unwrap_or_default()
}

/// Reads a request's form-encoded body: its parameters (`Action`, `Version`, then the
/// call's own, e.g. `Marker`), decoded, in the order sent.
pub async fn form_of(req: Request<Incoming>) -> Vec<(String, String)> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    parse_form(&body)
}

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space, `%XX` a byte).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let mut parts = kv.splitn(2, |&b| b == b'=');
            let key = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(part: &[u8]) -> String {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        match (part[i], hex(part.get(i + 1)), hex(part.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A successful answer to `action` carrying `inner` as its result.
pub fn result_document(action: &str, inner: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{inner}</{action}Result>\
         <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// How the credential report names the root user; in [`virtual_mfa_devices`], the holder of
/// root's device.
pub const ROOT: &str = "<root_account>";

/// A holder for [`virtual_mfa_devices`]: root's device listed without its `<User>`.
pub const ROOT_WITHOUT_USER: &str = "<root_account> without User";

/// The `<ListVirtualMFADevicesResult>` body listing one assigned virtual MFA device per
/// holder (an IAM user's name, or [`ROOT`]), truncated with `marker` when there is one.
///
/// A user's device names the user in full (`Path`, `UserName`, `UserId`, `Arn`,
/// `CreateDate`); root's device is `mfa/root-account-mfa-device` and its user has only
/// `UserId` (the account), `Arn` (`arn:aws:iam::ACCOUNT:root`) and `CreateDate`: root has
/// no user name or path, so whatever reads it must go by the ARN.
pub fn virtual_mfa_devices(account: &str, holders: &[&str], marker: Option<&str>) -> String {
    let mut out = String::from("<VirtualMFADevices>");
    for (i, holder) in holders.iter().enumerate() {
        let (serial, user) = if *holder == ROOT_WITHOUT_USER {
            // As some recorded answers list root's device: no <User>, only the serial.
            (
                format!("arn:aws:iam::{account}:mfa/root-account-mfa-device"),
                String::new(),
            )
        } else if *holder == ROOT {
            (
                format!("arn:aws:iam::{account}:mfa/root-account-mfa-device"),
                format!(
                    "<UserId>{account}</UserId><Arn>arn:aws:iam::{account}:root</Arn>\
                     <CreateDate>2020-01-01T00:00:00Z</CreateDate>"
                ),
            )
        } else {
            let name = escape(holder);
            (
                format!("arn:aws:iam::{account}:mfa/{name}"),
                format!(
                    "<Path>/</Path><UserName>{name}</UserName><UserId>AIDAFAKE{i:012}</UserId>\
                     <Arn>arn:aws:iam::{account}:user/{name}</Arn>\
                     <CreateDate>2024-01-01T00:00:00Z</CreateDate>"
                ),
            )
        };
        let user = if user.is_empty() {
            user
        } else {
            format!("<User>{user}</User>")
        };
        out.push_str(&format!(
            "<member><SerialNumber>{serial}</SerialNumber>{user}\
             <EnableDate>2024-01-02T00:00:00Z</EnableDate></member>"
        ));
    }
    out.push_str("</VirtualMFADevices>");
    match marker {
        Some(m) => out.push_str(&format!(
            "<IsTruncated>true</IsTruncated><Marker>{}</Marker>",
            escape(m)
        )),
        None => out.push_str("<IsTruncated>false</IsTruncated>"),
    }
    out
}

/// An IAM user as GetAccountAuthorizationDetails lists it, for [`user_details`]: name, path
/// and tags (key, value).
pub struct DetailUser<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub tags: &'a [(&'a str, &'a str)],
}

/// The `<GetAccountAuthorizationDetailsResult>` body of a `Filter=User` call listing `users`,
/// truncated with `marker` when there is one. Each user comes as AWS writes one: besides its
/// path and tags, an inline policy (its document URL-encoded), a group and an attached managed
/// policy, which whatever reads it must step over; the group, role and policy lists are empty,
/// as the filter asks.
pub fn user_details(account: &str, users: &[DetailUser], marker: Option<&str>) -> String {
    let mut out = String::from("<UserDetailList>");
    for (i, u) in users.iter().enumerate() {
        let name = escape(u.name);
        let tags: String = u
            .tags
            .iter()
            .map(|(k, v)| {
                format!(
                    "<member><Key>{}</Key><Value>{}</Value></member>",
                    escape(k),
                    escape(v)
                )
            })
            .collect();
        out.push_str(&format!(
            "<member><Path>{path}</Path><UserName>{name}</UserName>\
             <UserId>AIDAFAKE{i:012}</UserId><Arn>arn:aws:iam::{account}:user{path}{name}</Arn>\
             <CreateDate>2024-01-01T00:00:00Z</CreateDate>\
             <UserPolicyList><member><PolicyName>inline</PolicyName>\
             <PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D</PolicyDocument>\
             </member></UserPolicyList>\
             <GroupList><member>developers</member></GroupList>\
             <AttachedManagedPolicies><member><PolicyName>ReadOnlyAccess</PolicyName>\
             <PolicyArn>arn:aws:iam::aws:policy/ReadOnlyAccess</PolicyArn></member></AttachedManagedPolicies>\
             <Tags>{tags}</Tags></member>",
            path = escape(u.path),
        ));
    }
    out.push_str("</UserDetailList><GroupDetailList/><RoleDetailList/><Policies/>");
    match marker {
        Some(m) => out.push_str(&format!(
            "<IsTruncated>true</IsTruncated><Marker>{}</Marker>",
            escape(m)
        )),
        None => out.push_str("<IsTruncated>false</IsTruncated>"),
    }
    out
}

/// `text` as XML character data.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
