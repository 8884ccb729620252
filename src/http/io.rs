//! A connection's bytes as the front sees them: plain TCP, or TLS over it (decrypted
//! here), so that everything after the handshake works the same on both listeners.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

/// One accepted connection.
pub enum Io {
    Plain(TcpStream),
    /// Boxed: TLS state is large, and most connections are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

/// `$io` as the `AsyncRead + AsyncWrite` it holds, pinned, then `.$call`.
macro_rules! either {
    ($io:expr, $call:ident($($arg:expr),*)) => {
        match $io.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).$call($($arg),*),
            Io::Tls(tls) => Pin::new(&mut **tls).$call($($arg),*),
        }
    };
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(tcp) => tcp,
            Io::Tls(tls) => tls.get_ref().0,
        }
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    /// Reads once whatever the client sent and drops it: `Ready(Ok(0))` when it hung
    /// up. Nothing is kept between polls (an idle stream holds no read buffer).
    pub fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut sink = [0; 256];
        let mut buf = ReadBuf::new(&mut sink);
        std::task::ready!(Pin::new(self).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        either!(self, poll_read(cx, buf))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    /// TLS keeps records it could not write yet; a flush sends them.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, poll_shutdown(cx))
    }
}
