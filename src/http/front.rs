//! The listener's front: each new connection is looked at once, before any HTTP
//! machinery is set up for it.
//!
//! It is counted ([`super::admission`]: per client IP, and against the file limit),
//! and its first request head is read and checked ([`super::head`]). A head that is
//! malformed, too large or too slow, or a connection over a cap, is answered here with
//! a JSON error and closed.
//!
//! When its first request opens an event stream (`GET /{topics}/sse`, `/json` or
//! `/raw`), the app answers it like any request, and a small task writes the answer
//! straight to the socket: the response head, then each chunk of the stream as it
//! comes, until either side ends it (the connection then closes). An idle subscriber
//! costs that task, its session and its queue, and no HTTP buffers.
//!
//! Every other connection, WebSocket upgrades included, goes to actix-web's HTTP/1
//! dispatcher, which reads the head the front read before anything else.
//!
//! On the TLS listener the handshake comes first, after the connection is counted and
//! within the time its head has; everything after it reads and writes the decrypted
//! stream ([`Io`]), so both listeners behave alike.

use std::future::poll_fn;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use actix_http::{HttpServiceBuilder, KeepAlive, Request};
use actix_rt::net::TcpStream;
use actix_server::Server;
use actix_service::{fn_factory, fn_service, map_config, IntoServiceFactory, Service};
use actix_service::{ServiceFactory, ServiceFactoryExt};
use actix_web::body::{self, BodySize, BoxBody, MessageBody};
use actix_web::dev::AppConfig;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, Uri, Version};
use actix_web::{web, HttpResponse, ResponseError};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::access_log;
use super::admission::{Admission, Verdict};
use super::head::{self, Body, Head, HeadError};
use super::io::Io;
use super::stall::Stall;
use super::tls::{self, TlsAcceptor};
use super::AppState;
use crate::cores::Cores;
use crate::error::detail;
use crate::error::ApiError;
use crate::metrics::{Limit, METRICS};
use crate::model::message::Transport;

/// How long a new connection may take to send its first request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection about to be refused may take to send its head (read so that
/// the refusal reaches the client rather than a reset).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a refused connection is drained after its answer before it is dropped
/// (none near the file limit, where its file is wanted back at once).
const LINGER: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// What a handler may take, on top of a request's head and body, before its answer
/// starts (a publish waits at most 5 s for the writer, a pooled connection as long).
const HANDLER_TIME: Duration = Duration::from_secs(5);
/// What is read of a head at a time.
const HEAD_READ: usize = 4096;
/// Open connections each worker accepts before it waits for some to close.
const MAX_CONNECTIONS_PER_WORKER: usize = 1 << 18;

/// A bound address the app is served on: HTTP, or HTTPS with `tls`.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
}

/// Binds the app to `listeners` on `workers` threads, each pinned to a core of its own
/// when `pin` is set and there are enough; resolves when the server stops. Connections
/// are counted across every listener.
pub fn serve(
    listeners: Vec<Listener>,
    workers: usize,
    pin: bool,
    state: web::Data<AppState>,
) -> io::Result<Server> {
    let mut cores = pin
        .then(|| Cores::for_workers(workers))
        .flatten()
        .map(Arc::new);
    let admission = Arc::new(Admission::new(state.config.limits.connections_per_ip));
    let mut server = Server::build()
        .workers(workers)
        .max_concurrent_connections(MAX_CONNECTIONS_PER_WORKER)
        .shutdown_timeout(2)
        // `server::run` handles the signals itself: a clean shutdown, a reload.
        .disable_signals();
    for Listener { tcp, tls } in listeners {
        let addr = tcp.local_addr()?;
        let name = if tls.is_some() {
            "tidings-tls"
        } else {
            "tidings"
        };
        // Each worker starts a service for every listener, on its own thread: the first
        // listener's pins it (the cores are handed out in turn, once per worker).
        let cores = cores.take();
        let (state, admission) = (state.clone(), admission.clone());
        server = server.listen(name, tcp, move || {
            let (state, cores, admission) = (state.clone(), cores.clone(), admission.clone());
            let tls = tls.clone();
            fn_factory(move || {
                // Runs on the worker's own thread, as it starts.
                if let Some(cores) = &cores {
                    cores.pin_this_thread();
                }
                Front::start(state.clone(), admission.clone(), addr, tls.clone())
            })
        })?;
    }
    Ok(server.run())
}

/// One worker's two ways to serve a connection, and what decides between them.
struct Front<H, A> {
    dispatcher: H,
    app: A,
    admission: Arc<Admission>,
    /// Every connection comes from the proxy: no cap per IP.
    behind_proxy: bool,
    /// How long a client that has sent (part of) a request may wait for the answer
    /// to start before its connection is closed.
    stall_limit: Duration,
    /// On the HTTPS listener: the handshake each connection makes first.
    tls: Option<TlsAcceptor>,
}

impl Front<(), ()> {
    async fn start(
        state: web::Data<AppState>,
        admission: Arc<Admission>,
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) -> Result<impl Service<TcpStream, Response = (), Error = ()>, ()> {
        let dispatcher = HttpServiceBuilder::<Replay, _>::default()
            .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
            .client_request_timeout(REQUEST_TIMEOUT)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(addr)
            .h1(map_config(super::app(state.clone()).into_factory(), |_| {
                AppConfig::default()
            }))
            .map_err(drop)
            .new_service(())
            .await?;
        let behind_proxy = state.config.behind_proxy;
        let stall_limit = REQUEST_TIMEOUT + state.config.limits.body_timeout + HANDLER_TIME;
        let app = super::app(state)
            .into_factory()
            .new_service(AppConfig::default())
            .await?;
        let front = Rc::new(Front {
            dispatcher,
            app,
            admission,
            behind_proxy,
            stall_limit,
            tls,
        });
        Ok(fn_service(move |stream: TcpStream| {
            let front = front.clone();
            async move {
                front.connection(stream).await;
                Ok(())
            }
        }))
    }
}

impl<H, A, B> Front<H, A>
where
    H: Service<(Replay, Option<SocketAddr>), Response = (), Error = ()>,
    A: Service<Request, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    async fn connection(&self, tcp: TcpStream) {
        let peer = tcp.peer_addr().ok();
        let ip = peer.map(|a| a.ip()).filter(|_| !self.behind_proxy);
        let ticket = self.admission.enter(ip);
        let patience = match ticket.verdict {
            Verdict::Serve => REQUEST_TIMEOUT,
            _ => REFUSAL_TIMEOUT,
        };
        // A TLS handshake and the first head share one deadline: a client slow in
        // either is closed alike.
        let started = Instant::now();
        let deadline = started + patience;
        // Each way is boxed (the compiler would otherwise size every connection's task
        // for the largest of them, and for the locals moved out before it).
        let mut stream = match &self.tls {
            None => Io::Plain(tcp),
            Some(acceptor) => match Box::pin(tls::accept(acceptor, tcp, deadline)).await {
                Some(tls) => Io::Tls(Box::new(tls)),
                None => return,
            },
        };
        let mut buf = BytesMut::new();
        let read = Box::pin(tokio::time::timeout_at(
            deadline,
            read_head(&mut stream, &mut buf),
        ))
        .await;
        let first = match read {
            Ok(Ok(())) => first_request(&buf, peer),
            // Nothing was sent (a client that connected ahead of need, or left).
            Ok(Err(_)) => return,
            Err(_) if buf.is_empty() => return,
            Err(_) => Err(ApiError::RequestTimeout),
        };
        let refused = |e: &ApiError| access_log::refused(e, peer, started.into_std());
        let first = match (first, ticket.verdict) {
            (Err(e), _) => {
                refused(&e);
                return Box::pin(refuse(stream, e, LINGER)).await;
            }
            (Ok(_), Verdict::OverIpCap { cap }) => {
                METRICS.rate_limited(Limit::Connections);
                let e = ApiError::rate_limited(cap, Duration::from_secs(1));
                refused(&e);
                return Box::pin(refuse(stream, e, LINGER)).await;
            }
            // Near the file limit only the probes are answered, one request each.
            (Ok(First::Probe(request)), Verdict::AtFileLimit) => First::Direct(request),
            (Ok(_), Verdict::AtFileLimit) => {
                let e = ApiError::AtConnectionLimit;
                refused(&e);
                return Box::pin(refuse(stream, e, Duration::ZERO)).await;
            }
            (Ok(First::Probe(_)), Verdict::Serve) => First::Other,
            (Ok(first), Verdict::Serve) => first,
        };
        match first {
            First::Direct(request) => Box::pin(self.stream(stream, request)).await,
            _ => {
                let io = Replay::new(buf, stream, self.stall_limit);
                let _ = Box::pin(self.dispatcher.call((io, peer))).await;
            }
        }
    }

    /// Answers a request on the socket, and keeps the connection only as long as the
    /// answer is a stream that goes on.
    async fn stream(&self, mut stream: Io, request: Request) {
        let _ = stream.set_nodelay(true);
        let response = match self.app.call(request).await {
            Ok(response) => response.into_parts().1.map_into_boxed_body(),
            Err(e) => e.as_response_error().error_response(),
        };
        if let Some(body) = Box::pin(write_response(&mut stream, response)).await {
            let _ = pump(&mut stream, body).await;
        }
        let _ = stream.shutdown().await;
    }
}

/// What the front makes of a connection's first request.
enum First {
    /// Answered by the front itself: an event stream, or (near the file limit) a probe.
    Direct(Request),
    /// `GET /health` or `GET /metrics`: the dispatcher's, unless near the file limit.
    Probe(Request),
    /// The dispatcher's.
    Other,
}

/// Reads until `buf` holds a whole request head, or one that is refused already.
/// An error means the client left (or sent nothing before its socket failed).
async fn read_head(stream: &mut Io, buf: &mut BytesMut) -> io::Result<()> {
    loop {
        if !matches!(head::check_head(buf), Ok(None)) {
            return Ok(());
        }
        buf.reserve(HEAD_READ);
        match stream.read_buf(buf).await? {
            0 if buf.is_empty() => return Err(io::ErrorKind::UnexpectedEof.into()),
            // A head cut short is malformed; `first_request` says so.
            0 => return Ok(()),
            _ => {}
        }
    }
}

/// Checks the head in `buf` and sorts the request. A stream request (a whole `GET` of
/// an event stream with no body and no upgrade) and a probe are built here.
fn first_request(buf: &[u8], peer: Option<SocketAddr>) -> Result<First, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
    let (head, count) = head::parse_head(buf, &mut headers)?
        .ok_or(HeadError::Malformed(detail::INCOMPLETE_HEAD))?;
    let plain_get = head.method == "GET" && head.body == Body::None && !head.upgrade;
    let path = head.target.split('?').next().unwrap_or_default();
    if plain_get && opens_stream(head.target) {
        return Ok(First::Direct(request(&head, &headers[..count], peer)?));
    }
    if plain_get && crate::limits::is_probe(path) {
        return Ok(First::Probe(request(&head, &headers[..count], peer)?));
    }
    Ok(First::Other)
}

/// An actix request made from a checked head (its body is empty).
fn request(
    head: &Head<'_>,
    headers: &[httparse::Header<'_>],
    peer: Option<SocketAddr>,
) -> Result<Request, ApiError> {
    let malformed = || ApiError::from(HeadError::Malformed(detail::MALFORMED_HEAD));
    let mut request = Request::new();
    let out = request.head_mut();
    out.method = Method::GET;
    out.uri = Uri::try_from(head.target).map_err(|_| malformed())?;
    out.version = match head.version {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    out.peer_addr = peer;
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| malformed())?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| malformed())?;
        out.headers.append(name, value);
    }
    Ok(request)
}

/// Answers `error` (`connection: close`), then drains what the client still sends for
/// up to `linger` before closing, so the answer is read rather than lost to a reset.
async fn refuse(mut stream: Io, error: ApiError, linger: Duration) {
    let _ = Box::pin(write_response(&mut stream, error.error_response())).await;
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0; 1024];
        while let Ok(1..) = stream.read(&mut sink).await {}
    };
    let _ = tokio::time::timeout(linger, drain).await;
}

/// Writes a response's head, and its body when that has a length; returns a stream
/// body still to be written.
async fn write_response(stream: &mut Io, response: HttpResponse<BoxBody>) -> Option<BoxBody> {
    let (head, length, body) = encode_head(response);
    stream.write_all(&head).await.ok()?;
    let rest = match length {
        None => Some(body),
        Some(0) => None,
        Some(_) => {
            let bytes = body::to_bytes(body).await.ok()?;
            stream.write_all(&bytes).await.ok()?;
            None
        }
    };
    stream.flush().await.ok()?;
    rest
}

/// A connection's socket, with the head the front read from it given back first.
pub struct Replay {
    head: BytesMut,
    io: Io,
    /// Closes the connection when a later request stalls.
    stall: Stall,
    /// A JSON answer written in place of a bare error head of the dispatcher's.
    answer: Option<Bytes>,
}

impl Replay {
    fn new(head: BytesMut, io: Io, stall_limit: Duration) -> Self {
        let mut stall = Stall::new(stall_limit);
        stall.received();
        Self {
            head,
            io,
            stall,
            answer: None,
        }
    }

    /// Writes what is left of a JSON answer put in place of the dispatcher's.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(answer) = &mut self.answer {
            let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, answer))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            answer.advance(n);
            if answer.is_empty() {
                self.answer = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The JSON answer for an error the dispatcher answers with a bare head (a later
/// request of a kept-alive connection it cannot parse), as the front answers it for a
/// first request.
fn json_answer(written: &[u8]) -> Option<Bytes> {
    let error = match head::empty_error_status(written)? {
        400 => ApiError::bad_request(detail::MALFORMED_HEAD),
        408 => ApiError::RequestTimeout,
        413 => ApiError::TooLarge,
        414 => ApiError::UriTooLong,
        431 => ApiError::HeadersTooLarge,
        _ => return None,
    };
    let (mut answer, _, body) = encode_head(error.error_response());
    answer.extend_from_slice(&body.try_into_bytes().ok()?);
    Some(answer.into())
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.head.is_empty() {
            if this.stall.poll_expired(cx).is_ready() {
                let e = io::Error::new(io::ErrorKind::TimedOut, "request not complete in time");
                return Poll::Ready(Err(e));
            }
            let before = buf.filled().len();
            let read = Pin::new(&mut this.io).poll_read(cx, buf);
            if buf.filled().len() > before {
                this.stall.received();
            }
            return read;
        }
        let n = this.head.len().min(buf.remaining());
        buf.put_slice(&this.head[..n]);
        this.head.advance(n);
        if this.head.is_empty() {
            // Free the buffer for the rest of the connection.
            this.head = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_answer(cx))?;
        this.stall.answered(buf);
        if let Some(answer) = json_answer(buf) {
            this.answer = Some(answer);
            // The rest goes out with the next write or flush.
            if let Poll::Ready(Err(e)) = this.poll_answer(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty());
        if self.answer.is_some() || first.is_some_and(|b| json_answer(b).is_some()) {
            return self.poll_write(cx, first.map_or(&[][..], |b| &b[..]));
        }
        if let Some(first) = first {
            self.stall.answered(first);
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_answer(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_answer(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// `/{topics}/sse`, `/{topics}/json` or `/{topics}/raw`, with any query.
fn opens_stream(target: &str) -> bool {
    let path = target.split('?').next().unwrap_or_default();
    let mut segments = path.strip_prefix('/').unwrap_or_default().split('/');
    match (segments.next(), segments.next(), segments.next()) {
        (Some(topics), Some(transport), None) => {
            !topics.is_empty() && Transport::parse(transport).is_some_and(|t| t != Transport::Ws)
        }
        _ => false,
    }
}

/// Moves a stream body to the socket; notices a client that hangs up while the
/// stream is idle. Waits on both with plain polls, so an idle stream's state is the
/// body and the socket, nothing more.
async fn pump(stream: &mut Io, mut body: BoxBody) -> io::Result<()> {
    loop {
        let next = poll_fn(|cx| {
            // Anything the client sends now is ignored; end of stream means it left.
            if let Poll::Ready(read) = stream.poll_discard(cx) {
                return Poll::Ready(Next::Read(read));
            }
            Pin::new(&mut body).poll_next(cx).map(Next::Chunk)
        })
        .await;
        match next {
            Next::Chunk(Some(Ok(bytes))) => {
                stream.write_all(&bytes).await?;
                stream.flush().await?;
            }
            Next::Chunk(_) => return Ok(()),
            Next::Read(read) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
    }
}

enum Next<C> {
    Chunk(Option<C>),
    Read(io::Result<usize>),
}

/// The response's head encoded (its header map is dropped here), the body's length
/// when known, and the body.
fn encode_head(response: HttpResponse<BoxBody>) -> (Vec<u8>, Option<u64>, BoxBody) {
    let (head, body) = response.into_parts();
    let length = match body.size() {
        BodySize::None => Some(0),
        BodySize::Sized(n) => Some(n),
        BodySize::Stream => None,
    };
    (response_head(&head, length), length, body)
}

/// `HTTP/1.1 200 OK`, the response's headers, its length when known, and
/// `connection: close` (the body ends when the connection does).
fn response_head(head: &HttpResponse<()>, length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let status = head.status();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in head.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = length {
        let _ = write!(out, "content-length: {n}\r\n");
    }
    let _ = write!(
        out,
        "date: {}\r\nconnection: close\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stream_paths_take_the_direct_way() {
        assert!(opens_stream("/alerts/sse"));
        assert!(opens_stream("/alerts,backups/json?since=all&poll=1"));
        assert!(opens_stream("/alerts/raw"));
        assert!(!opens_stream("/alerts/ws"));
        assert!(!opens_stream("/alerts,backups/auth"));
        assert!(!opens_stream("/alerts"));
        assert!(!opens_stream("//sse"));
        assert!(!opens_stream("/api/topics/sse"));
        assert!(!opens_stream("/api/keys"));
        assert!(!opens_stream("*"));
    }
}
