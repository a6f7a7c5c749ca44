//! [`FrameDecoder`] as a `tokio_util` decoder, so a `FramedRead` can drive it over a socket.

use bytes::BytesMut;

use crate::frame::{Frame, FrameDecoder, FrameError};

impl tokio_util::codec::Decoder for FrameDecoder {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(FrameDecoder::decode(self, buf)?)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(FrameDecoder::decode_eof(self, buf)?)
    }
}

/// A framing error or the IO error under it; `FramedRead` needs one type for both.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
