//! Splitting a byte stream into frames: header lines and payload chunks.
//!
//! The decoder never parses JSON and never looks for newlines inside a payload: after a header
//! the caller reads its `"size"` and calls [`FrameDecoder::expect_payload`], and the next `size`
//! bytes come back as [`Frame::Payload`] chunks whatever they contain. That one rule is what
//! keeps two messages in one read, or one message over many reads, apart.

use bytes::{Bytes, BytesMut};

use crate::MAX_HEADER_LEN;

/// One unit out of the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A header line, without its `\n`.
    Header(Bytes),
    /// Some of the bytes of the payload announced by the last header; never empty.
    Payload(Bytes),
}

/// Why the stream cannot be split any further. Both are fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("header line longer than {max} bytes")]
    HeaderTooLong { max: usize },
    #[error("the stream ended inside a {0}")]
    Truncated(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a header; `scanned` bytes of the buffer are known to hold no `\n`, so a
    /// header that arrives a byte at a time is scanned once, not once per byte.
    Header {
        scanned: usize,
    },
    Payload {
        remaining: u64,
    },
}

/// A pure, incremental frame splitter over a [`BytesMut`] the caller fills.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    state: State,
    max_header: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the protocol's header cap.
    pub fn new() -> Self {
        Self::with_max_header(MAX_HEADER_LEN)
    }

    /// A decoder with another header cap (the `\n` counts), for tests and tighter servers.
    pub fn with_max_header(max_header: usize) -> Self {
        Self {
            state: State::Header { scanned: 0 },
            max_header,
        }
    }

    /// Announces that the header just returned is followed by `size` payload bytes.
    ///
    /// Only valid right after a [`Frame::Header`]; a payload cannot be announced twice.
    pub fn expect_payload(&mut self, size: u64) {
        debug_assert!(matches!(self.state, State::Header { scanned: 0 }));
        if size > 0 {
            self.state = State::Payload { remaining: size };
        }
    }

    /// How many payload bytes are still to come (0 when a header is expected next).
    pub fn payload_remaining(&self) -> u64 {
        match self.state {
            State::Payload { remaining } => remaining,
            State::Header { .. } => 0,
        }
    }

    /// Takes the next frame off the front of `buf`; `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.state {
            State::Payload { remaining } => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                let left = remaining - take as u64;
                self.state = if left == 0 {
                    State::Header { scanned: 0 }
                } else {
                    State::Payload { remaining: left }
                };
                Ok(Some(Frame::Payload(buf.split_to(take).freeze())))
            }
            State::Header { scanned } => {
                let window = buf.len().min(self.max_header);
                match buf[scanned.min(window)..window]
                    .iter()
                    .position(|&b| b == b'\n')
                {
                    Some(pos) => {
                        let end = scanned + pos;
                        let mut line = buf.split_to(end + 1);
                        line.truncate(end);
                        self.state = State::Header { scanned: 0 };
                        Ok(Some(Frame::Header(line.freeze())))
                    }
                    None if window >= self.max_header => Err(FrameError::HeaderTooLong {
                        max: self.max_header,
                    }),
                    None => {
                        self.state = State::Header { scanned: window };
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Like [`decode`](Self::decode), for when the peer has closed: leftovers are an error.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => match self.state {
                State::Payload { .. } => Err(FrameError::Truncated("payload")),
                State::Header { .. } if !buf.is_empty() => Err(FrameError::Truncated("header")),
                State::Header { .. } => Ok(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, announcing `payload_of(header)` after each header.
    fn split_all(input: &[u8], step: usize) -> Result<Vec<Frame>, FrameError> {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf)? {
                if let Frame::Header(line) = &frame {
                    decoder.expect_payload(payload_of(line));
                }
                frames.push(frame);
            }
        }
        while let Some(frame) = decoder.decode_eof(&mut buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    fn payload_of(line: &[u8]) -> u64 {
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        value.get("size").and_then(|s| s.as_u64()).unwrap_or(0)
    }

    /// Joins adjacent payload chunks, so results can be compared whatever the read sizes were.
    fn merged(frames: Vec<Frame>) -> Vec<Frame> {
        let mut out: Vec<Frame> = Vec::new();
        for frame in frames {
            match (out.last_mut(), frame) {
                (Some(Frame::Payload(prev)), Frame::Payload(more)) => {
                    let mut joined = BytesMut::from(&prev[..]);
                    joined.extend_from_slice(&more);
                    *prev = joined.freeze();
                }
                (_, frame) => out.push(frame),
            }
        }
        out
    }

    #[test]
    fn splits_the_same_at_every_read_size() {
        // A payload that itself holds newlines and something that looks like a header.
        let payload = b"line one\n{\"op\":\"list\",\"path\":\"\"}\n\x00\xff";
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"op\":\"stat\",\"path\":\"a\"}\n");
        input.extend_from_slice(
            format!(
                "{{\"op\":\"put\",\"path\":\"b\",\"size\":{}}}\n",
                payload.len()
            )
            .as_bytes(),
        );
        input.extend_from_slice(payload);
        input.extend_from_slice(b"{\"op\":\"put\",\"path\":\"empty\",\"size\":0}\n");
        input.extend_from_slice(b"{\"op\":\"list\",\"path\":\"\"}\n");

        let expected = vec![
            Frame::Header(Bytes::from_static(b"{\"op\":\"stat\",\"path\":\"a\"}")),
            Frame::Header(Bytes::from(
                format!(
                    "{{\"op\":\"put\",\"path\":\"b\",\"size\":{}}}",
                    payload.len()
                )
                .into_bytes(),
            )),
            Frame::Payload(Bytes::from_static(payload)),
            Frame::Header(Bytes::from_static(
                b"{\"op\":\"put\",\"path\":\"empty\",\"size\":0}",
            )),
            Frame::Header(Bytes::from_static(b"{\"op\":\"list\",\"path\":\"\"}")),
        ];
        for step in 1..=input.len() {
            assert_eq!(
                merged(split_all(&input, step).unwrap()),
                expected,
                "step {step}"
            );
        }
    }

    #[test]
    fn refuses_an_overlong_header_without_buffering_it() {
        let mut decoder = FrameDecoder::with_max_header(16);
        let mut buf = BytesMut::from(&b"0123456789abcde"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"f");
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::HeaderTooLong { max: 16 })
        );
    }

    #[test]
    fn a_header_exactly_at_the_cap_is_accepted() {
        let mut decoder = FrameDecoder::with_max_header(4);
        let mut buf = BytesMut::from(&b"abc\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Header(Bytes::from_static(b"abc"))))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn truncation_is_reported_at_eof() {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::from(&b"{\"op\":"[..]);
        assert_eq!(
            decoder.decode_eof(&mut buf),
            Err(FrameError::Truncated("header"))
        );

        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::from(&b"h\nab"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Header(_)))
        ));
        decoder.expect_payload(5);
        assert!(matches!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Payload(_)))
        ));
        assert_eq!(decoder.payload_remaining(), 3);
        assert_eq!(
            decoder.decode_eof(&mut buf),
            Err(FrameError::Truncated("payload"))
        );
    }

    #[test]
    fn huge_announced_payloads_do_not_overflow() {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::from(&b"h\nxyz"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Header(_)))
        ));
        decoder.expect_payload(u64::MAX);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Payload(Bytes::from_static(b"xyz"))))
        );
        assert_eq!(decoder.payload_remaining(), u64::MAX - 3);
    }
}
