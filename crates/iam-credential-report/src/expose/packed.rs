//! Exposition compressed in pieces that join into one gzip stream without being compressed
//! again.
//!
//! Why: with per-user series an account's exposition is megabytes (74 MB for 100,000 users),
//! and gzipping the whole snapshot again whenever one account of many changed cost seconds
//! and three copies of the text. Here each family body of at least [`MIN_DEFLATED`] bytes is
//! compressed once, when its account is rendered, and only its compressed form is kept
//! ([`Packed`]). The text is compressed [`CHUNK`] bytes at a time, each chunk as raw deflate
//! (RFC 1951) from a fresh compressor ended by a sync flush, so every chunk starts and ends on
//! a byte boundary and refers to nothing before it: chunks and pieces can be concatenated in
//! any order into one valid deflate stream (as pigz does). The gzip trailer's CRC-32 is
//! combined from each piece's own (crc32fast's `combine`), so the text is never read again.
//!
//! [`compose_gzip`] lays the pieces out in family order under one header per family, as
//! [`super::compose`] does for text, and compresses the small rest (counts, checks, refresh
//! statistics: a few KB per account, which compress well together) as it goes. Publishing
//! thus costs the small text plus handing on the big pieces, whatever their size.
//!
//! A plain-text scrape inflates the stream as it is sent ([`Inflater`]), so the plain text is
//! never held whole.

use super::{Bodies, Family};
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::cell::RefCell;

/// Text is compressed this many bytes at a time: each chunk costs a few bytes of flush and
/// compresses without the window of the previous one, so larger is smaller, but the text of
/// each big family waits in a buffer of this size while an account is rendered.
pub const CHUNK: usize = 64 * 1024;

/// Family bodies at least this long are compressed on their own when rendered; shorter ones
/// stay text, to be compressed with their neighbours at publish.
pub const MIN_DEFLATED: usize = 2 * 1024;

/// zlib's level 6, its default: level 1 compresses this text to about half again the size,
/// for a third less time.
const LEVEL: u32 = 6;

/// The gzip member header (RFC 1952, 2.3): deflate, no flags, no time, unknown system.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A final, empty, fixed-Huffman block (BFINAL 1, BTYPE 01, end of block): ends a deflate
/// stream after a flush.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

thread_local! {
    /// One compressor per thread, reset per chunk: a compressor's state is a few hundred KB.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(LEVEL), false));
}

/// Text compressed as self-contained raw deflate chunks, with its length and CRC-32.
#[derive(Debug, Clone, Default)]
pub struct Deflated {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl Deflated {
    /// Compresses `text` after what is already held.
    pub fn push(&mut self, text: &[u8]) {
        for chunk in text.chunks(CHUNK) {
            deflate_into(&mut self.data, chunk);
            self.crc.update(chunk);
        }
    }

    /// The compressed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The length of the text it holds.
    pub fn text_len(&self) -> u64 {
        self.crc.total_len()
    }

    fn shrink(mut self) -> Deflated {
        self.data.shrink_to_fit();
        self
    }
}

/// Compresses `text` (at most a few [`CHUNK`]s) as raw deflate ending in a sync flush.
fn deflate_into(out: &mut Vec<u8>, text: &[u8]) {
    if text.is_empty() {
        return;
    }
    COMPRESSOR.with_borrow_mut(|c| {
        c.reset();
        let mut input = text;
        loop {
            out.reserve(input.len() / 4 + 64);
            let before = c.total_in();
            c.compress_vec(input, out, FlushCompress::Sync)
                .expect("deflating into memory cannot fail");
            input = &input[(c.total_in() - before) as usize..];
            // Done once the input is taken and the flush did not run out of room.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
    });
}

/// One part of the exposition (an account's report series) whose big family bodies are
/// compressed: written like [`Bodies`], through [`Packed::body`] and [`Packed::wrote`].
#[derive(Debug, Clone)]
pub struct Packed {
    text: Bodies,
    /// Per family, once finished: the compressed piece and its text's CRC-32 and length.
    deflated: Vec<Option<(Bytes, crc32fast::Hasher)>>,
    /// While writing: each family's compressed chunks so far.
    pending: Vec<Deflated>,
}

impl Default for Packed {
    fn default() -> Packed {
        Packed::new()
    }
}

impl Packed {
    /// Nothing yet.
    pub fn new() -> Packed {
        Packed {
            text: Bodies::default(),
            deflated: vec![None; Family::ALL.len()],
            pending: vec![Deflated::default(); Family::ALL.len()],
        }
    }

    /// The family's text not yet compressed, to append samples to; call [`Packed::wrote`]
    /// after.
    pub(super) fn body(&mut self, f: Family) -> &mut String {
        self.text.body(f)
    }

    /// Compresses the family's text once a chunk's worth has been written.
    pub(super) fn wrote(&mut self, f: Family) {
        let body = self.text.body(f);
        if body.len() >= CHUNK {
            self.pending[f as usize].push(body.as_bytes());
            body.clear();
        }
    }

    /// Compresses every body that reached [`MIN_DEFLATED`]; the rest stays text.
    pub fn finish(mut self) -> Packed {
        for &f in Family::ALL {
            let i = f as usize;
            let mut d = std::mem::take(&mut self.pending[i]);
            let body = self.text.body(f);
            if d.text_len() == 0 && body.len() < MIN_DEFLATED {
                body.shrink_to_fit();
                continue;
            }
            d.push(body.as_bytes());
            *body = String::new();
            let d = d.shrink();
            self.deflated[i] = Some((Bytes::from(d.data), d.crc));
        }
        self.pending = Vec::new();
        self
    }

    /// The family's compressed piece, if its body was big enough to be compressed alone.
    pub fn deflated(&self, f: Family) -> Option<(&Bytes, &crc32fast::Hasher)> {
        self.deflated[f as usize].as_ref().map(|(d, crc)| (d, crc))
    }

    /// The family's text, when it was small enough to stay text.
    pub fn text(&self, f: Family) -> &str {
        self.text.get(f)
    }

    /// Bytes held: text and compressed.
    pub fn held_bytes(&self) -> usize {
        self.text.len()
            + self
                .deflated
                .iter()
                .flatten()
                .map(|(d, _)| d.len())
                .sum::<usize>()
    }
}

/// One part of a snapshot, as [`compose_gzip`] takes them.
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// Text only (live facts, statistics, exporter series).
    Text(&'a Bodies),
    /// An account's report series.
    Packed(&'a Packed),
}

/// A gzip member in pieces, left open so that a little more text (the process series, read
/// per scrape) can be added to the same member: [`Gzipped::finish`] gives the pieces to send.
/// One member rather than two, because not every client reads a second one (curl's
/// `--compressed` stops at the first).
#[derive(Debug, Clone)]
pub struct Gzipped {
    /// The header and the deflate data, without the final block and trailer.
    pieces: Vec<Bytes>,
    /// The CRC-32 and length of the text so far.
    crc: crc32fast::Hasher,
}

impl Default for Gzipped {
    fn default() -> Gzipped {
        compose_gzip(&[])
    }
}

impl Gzipped {
    /// The length of the text it holds.
    pub fn text_len(&self) -> u64 {
        self.crc.total_len()
    }

    /// The compressed length, tail aside.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum::<usize>() + FINAL_BLOCK.len() + 8
    }

    /// Never: there is always the header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole member with `tail` (a little text, added per scrape) at the end of its text:
    /// the pieces to send, in order, sharing the snapshot's bytes. The tail goes in stored
    /// (uncompressed) deflate blocks: a few hundred bytes, not worth a compressor per scrape.
    pub fn finish(&self, tail: &[u8]) -> Vec<Bytes> {
        let mut crc = self.crc.clone();
        crc.update(tail);
        let mut last = Vec::with_capacity(tail.len() + 32);
        for block in tail.chunks(u16::MAX as usize) {
            // BFINAL 0, BTYPE 00 (stored), padded to the byte; LEN and its complement.
            last.push(0);
            let len = block.len() as u16;
            last.extend_from_slice(&len.to_le_bytes());
            last.extend_from_slice(&(!len).to_le_bytes());
            last.extend_from_slice(block);
        }
        last.extend_from_slice(&FINAL_BLOCK);
        last.extend_from_slice(&crc.clone().finalize().to_le_bytes());
        // ISIZE: the length modulo 2^32 (RFC 1952, 2.3.1).
        last.extend_from_slice(&(crc.total_len() as u32).to_le_bytes());
        let mut pieces = self.pieces.clone();
        pieces.push(Bytes::from(last));
        pieces
    }

    /// Inflates its text again, piece by piece (the header skipped).
    pub fn inflater(&self) -> Inflater {
        Inflater::new(self.pieces[1..].to_vec())
    }
}

/// Writes `parts` as one gzip member, as [`super::compose`] writes them as text: one header
/// per family, then each part's samples in part order; families without samples left out.
pub fn compose_gzip(parts: &[Part<'_>]) -> Gzipped {
    let mut out = Composer {
        pieces: vec![Bytes::from_static(&GZIP_HEADER)],
        run: String::with_capacity(CHUNK + 4096),
        crc: crc32fast::Hasher::new(),
    };
    for &f in Family::ALL {
        let mut header = false;
        for part in parts {
            let (text, deflated) = match part {
                Part::Text(b) => (b.get(f), None),
                Part::Packed(p) => (p.text(f), p.deflated(f)),
            };
            if text.is_empty() && deflated.is_none() {
                continue;
            }
            if !header {
                super::write_header(&mut out.run, f);
                header = true;
            }
            out.run.push_str(text);
            if let Some((bytes, crc)) = deflated {
                out.flush();
                out.pieces.push(bytes.clone());
                out.crc.combine(crc);
            } else if out.run.len() >= CHUNK {
                out.flush();
            }
        }
    }
    out.flush();
    Gzipped {
        pieces: out.pieces,
        crc: out.crc,
    }
}

struct Composer {
    pieces: Vec<Bytes>,
    run: String,
    crc: crc32fast::Hasher,
}

impl Composer {
    /// Compresses the small text gathered so far into a piece.
    fn flush(&mut self) {
        if self.run.is_empty() {
            return;
        }
        let mut d = Deflated::default();
        d.push(self.run.as_bytes());
        self.crc.combine(&d.crc);
        self.pieces.push(Bytes::from(d.data));
        self.run.clear();
    }
}

/// Inflates a [`Gzipped`] a slice at a time, for plain-text scrapes.
pub struct Inflater {
    pieces: std::vec::IntoIter<Bytes>,
    current: Bytes,
    inflate: Decompress,
    done: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    /// Inflates the deflate data in `pieces` (sync-flushed chunks, no final block).
    fn new(pieces: Vec<Bytes>) -> Inflater {
        Inflater {
            pieces: pieces.into_iter(),
            current: Bytes::new(),
            inflate: Decompress::new(false),
            done: false,
        }
    }

    /// The next slice of text, at most `max` bytes; `None` at the end.
    pub fn next_slice(&mut self, max: usize) -> Option<Bytes> {
        let mut out = Vec::with_capacity(max);
        while !self.done && out.len() < max {
            if self.current.is_empty() {
                match self.pieces.next() {
                    Some(p) => self.current = p,
                    None => {
                        self.done = true;
                        break;
                    }
                }
            }
            let before = self.inflate.total_in();
            let before_out = out.len();
            self.inflate
                .decompress_vec(&self.current, &mut out, FlushDecompress::Sync)
                .expect("our own deflate stream is valid");
            let taken = (self.inflate.total_in() - before) as usize;
            let _ = self.current.split_to(taken);
            if taken == 0 && out.len() == before_out && out.len() < out.capacity() {
                // No progress with room to spare: the piece ends mid-block, which ours never
                // do; stop rather than spin.
                debug_assert!(false, "a deflate piece ends mid-block");
                self.done = true;
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

impl Iterator for Inflater {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.next_slice(CHUNK)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{compose, Bodies, Family};
    use super::*;
    use std::io::Read;

    fn gunzip(g: &Gzipped, tail: &str) -> String {
        let bytes: Vec<u8> = (g.finish(tail.as_bytes()).iter())
            .flat_map(|p| p.iter().copied())
            .collect();
        if tail.is_empty() {
            assert_eq!(bytes.len(), g.len());
        }
        let mut text = String::new();
        let mut decoder = flate2::read::GzDecoder::new(&bytes[..]);
        decoder.read_to_string(&mut text).unwrap();
        // One member, nothing after it.
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        text
    }

    fn lines(name: &str, account: usize, n: usize) -> String {
        (0..n)
            .map(|i| format!("{name}{{account_id=\"{account:012}\",user=\"user-{i}\"}} {i}\n"))
            .collect()
    }

    /// Parts as text and the same parts packed, with bodies small, just big enough to be
    /// compressed alone, and several chunks long.
    fn parts() -> (Vec<Bodies>, Vec<Packed>) {
        let mut texts = Vec::new();
        let mut packs = Vec::new();
        for (account, users) in [(1, 3), (2, 10), (3, 4000), (4, 0), (5, 20_000)] {
            let mut b = Bodies::default();
            let mut p = Packed::new();
            for f in [
                Family::Users,
                Family::UserMfaActive,
                Family::AccessKeyActive,
            ] {
                let n = if f == Family::Users { 1 } else { users };
                for line in lines(f.name(), account, n).lines() {
                    for out in [b.body(f), p.body(f)] {
                        out.push_str(line);
                        out.push('\n');
                    }
                    p.wrote(f);
                }
            }
            texts.push(b);
            packs.push(p.finish());
        }
        (texts, packs)
    }

    #[test]
    fn packed_parts_gunzip_to_the_composed_text() {
        let (texts, packs) = parts();
        assert!(packs[4].deflated(Family::UserMfaActive).is_some());
        assert!(packs[1].deflated(Family::UserMfaActive).is_none());
        assert!(packs[2].deflated(Family::UserMfaActive).is_some());
        let mut expected_parts: Vec<&Bodies> = Vec::new();
        let mut gz_parts = Vec::new();
        let live = {
            let mut b = Bodies::default();
            b.body(Family::Users)
                .push_str("aws_iam_users{account_id=\"live\"} 1\n");
            b
        };
        for (t, p) in texts.iter().zip(&packs) {
            expected_parts.push(t);
            expected_parts.push(&live);
            gz_parts.push(Part::Packed(p));
            gz_parts.push(Part::Text(&live));
        }
        let expected = compose(expected_parts.iter().copied());
        let g = compose_gzip(&gz_parts);
        assert_eq!(g.text_len(), expected.len() as u64);
        let text = gunzip(&g, "");
        assert!(text == expected, "the gzip stream differs from the text");
        // With a tail, in the same member.
        let text = gunzip(&g, "process_open_fds 9\n");
        assert!(text == expected.clone() + "process_open_fds 9\n");
        // And inflated a slice at a time, as a plain scrape reads it.
        let mut inflater = g.inflater();
        let mut plain = Vec::new();
        while let Some(s) = inflater.next_slice(1000) {
            assert!(s.len() <= 1000);
            plain.extend_from_slice(&s);
        }
        assert!(plain == expected.as_bytes());
        // The compressed form is kept, not the text.
        let held: usize = packs.iter().map(Packed::held_bytes).sum();
        assert!(held * 5 < expected.len(), "{held} of {}", expected.len());
    }

    #[test]
    fn an_empty_snapshot_is_a_valid_empty_stream() {
        let g = compose_gzip(&[]);
        assert_eq!(gunzip(&g, ""), "");
        assert_eq!(g.inflater().next(), None);
        assert_eq!(gunzip(&g, "a 1\n"), "a 1\n");
    }
}
