//! `/kiyeovo/direct/1`: one sealed payload per request, one short payload back.
//!
//! Framing is "the stream, until the writer closes it", read through a hard byte limit: a peer
//! that sends one byte more than the limit gets its stream reset before we buffer the excess.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/kiyeovo/direct/1");
/// Responses are acknowledgements; they never need to be large.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct DirectCodec {
    pub max_request_bytes: usize,
}

async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("direct payload over the {limit}-byte limit"),
        ));
    }
    Ok(buf)
}

#[async_trait::async_trait]
impl request_response::Codec for DirectCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, self.max_request_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if req.len() > self.max_request_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "direct payload too large",
            ));
        }
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[tokio::test]
    async fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        let mut codec = DirectCodec {
            max_request_bytes: 8,
        };
        let ok = request_response::Codec::read_request(
            &mut codec,
            &PROTOCOL,
            &mut Cursor::new(vec![1u8; 8]),
        )
        .await;
        assert_eq!(ok.unwrap().len(), 8);
        let err = request_response::Codec::read_request(
            &mut codec,
            &PROTOCOL,
            &mut Cursor::new(vec![1u8; 9]),
        )
        .await;
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
