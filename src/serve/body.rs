//! Response bodies: whole bytes for pages and probes, and for `/metrics` the published
//! snapshot's pieces sent as they are (gzip) or inflated as the client reads them (plain), so a
//! scrape copies nothing whole and a plain scrape of a large snapshot never holds its text.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use iam_credential_report::expose::packed::{Inflater, CHUNK};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A response body whose length is known up front (so it is sent with `Content-Length`).
#[derive(Debug)]
pub enum ResponseBody {
    /// Bytes sent one piece after another.
    Pieces {
        /// What is left to send.
        pieces: VecDeque<Bytes>,
        /// Bytes left.
        left: u64,
    },
    /// A gzip stream inflated a slice at a time, then a plain tail.
    Inflating {
        /// The snapshot, as it is inflated.
        inflater: Box<Inflater>,
        /// Sent after it.
        tail: Option<Bytes>,
        /// Bytes left, the tail's included.
        left: u64,
    },
}

impl ResponseBody {
    /// One piece of bytes.
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::pieces([bytes.into()])
    }

    /// Pieces sent in order.
    pub fn pieces(pieces: impl IntoIterator<Item = Bytes>) -> ResponseBody {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let left = pieces.iter().map(|p| p.len() as u64).sum();
        ResponseBody::Pieces { pieces, left }
    }

    /// `text_len` bytes inflated by `inflater`, then `tail`.
    pub fn inflating(inflater: Inflater, text_len: u64, tail: Bytes) -> ResponseBody {
        ResponseBody::Inflating {
            inflater: Box::new(inflater),
            left: text_len + tail.len() as u64,
            tail: Some(tail),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match &mut *self {
            ResponseBody::Pieces { pieces, left } => pieces.pop_front().inspect(|p| {
                *left -= p.len() as u64;
            }),
            ResponseBody::Inflating {
                inflater,
                tail,
                left,
            } => inflater
                .next_slice(CHUNK)
                .or_else(|| tail.take().filter(|t| !t.is_empty()))
                .inspect(|p| *left = left.saturating_sub(p.len() as u64)),
        };
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Pieces { pieces, .. } => pieces.is_empty(),
            ResponseBody::Inflating { left, .. } => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Pieces { left, .. } | ResponseBody::Inflating { left, .. } => {
                SizeHint::with_exact(*left)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use iam_credential_report::expose::{compose, compose_gzip, Bodies, Part};

    #[tokio::test]
    async fn pieces_and_inflated_text_arrive_whole_with_their_length() {
        let body = ResponseBody::pieces([Bytes::from("ab"), Bytes::new(), Bytes::from("c")]);
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abc");

        let parts = [
            iam_credential_report::expose::render_build_info("1.0", "abc"),
            Bodies::default(),
        ];
        let g = compose_gzip(&parts.iter().map(Part::Text).collect::<Vec<_>>());
        let expected = format!("{}tail\n", compose(&parts));
        assert!(expected.starts_with("# HELP"), "{expected}");
        let body = ResponseBody::inflating(g.inflater(), g.text_len(), Bytes::from("tail\n"));
        assert_eq!(body.size_hint().exact(), Some(expected.len() as u64));
        let text = body.collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], expected.as_bytes());
    }
}
