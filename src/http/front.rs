//! The listener's front: each new connection is looked at once, before any HTTP
//! machinery is set up for it.
//!
//! When its first request opens an event stream (`GET /{topics}/sse`, `/json` or
//! `/raw`), the app answers it like any request, and a small task writes the answer
//! straight to the socket: the response head, then each chunk of the stream as it
//! comes, until either side ends it (the connection then closes). An idle subscriber
//! costs that task, its session and its queue, and no HTTP buffers.
//!
//! Every other connection, WebSocket upgrades included, goes to actix-web's HTTP/1
//! dispatcher as it is.

use std::future::poll_fn;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use actix_http::{HttpService, KeepAlive, Request};
use actix_rt::net::TcpStream;
use actix_server::Server;
use actix_service::{fn_factory, fn_service, map_config, IntoServiceFactory, Service};
use actix_service::{ServiceFactory, ServiceFactoryExt};
use actix_web::body::{self, BodySize, BoxBody, MessageBody};
use actix_web::dev::AppConfig;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, Uri, Version};
use actix_web::{web, HttpResponse};
use tokio::io::AsyncWriteExt;

use super::AppState;
use crate::broker::message::Transport;
use crate::cores::Cores;

/// How long a new connection may take to send its first request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// A stream request's head must arrive whole, in the first read, within this size;
/// anything else is the dispatcher's to read.
const HEAD_LIMIT: usize = 4096;
const MAX_HEADERS: usize = 48;
/// Open connections each worker accepts before it waits for some to close.
const MAX_CONNECTIONS_PER_WORKER: usize = 1 << 18;

/// Binds the app to `listener` on `workers` threads, each pinned to a core of its own
/// when `pin` is set and there are enough; resolves when the server stops.
pub fn serve(
    listener: TcpListener,
    workers: usize,
    pin: bool,
    state: web::Data<AppState>,
) -> io::Result<Server> {
    let addr = listener.local_addr()?;
    let cores = pin
        .then(|| Cores::for_workers(workers))
        .flatten()
        .map(std::sync::Arc::new);
    let server = Server::build()
        .workers(workers)
        .max_concurrent_connections(MAX_CONNECTIONS_PER_WORKER)
        .shutdown_timeout(2)
        .listen("tidings", listener, move || {
            let state = state.clone();
            let cores = cores.clone();
            fn_factory(move || {
                // Runs on the worker's own thread, as it starts.
                if let Some(cores) = &cores {
                    cores.pin_this_thread();
                }
                Front::start(state.clone(), addr)
            })
        })?
        .run();
    Ok(server)
}

/// One worker's two ways to serve a connection.
struct Front<H, A> {
    dispatcher: H,
    app: A,
}

impl Front<(), ()> {
    async fn start(
        state: web::Data<AppState>,
        addr: SocketAddr,
    ) -> Result<impl Service<TcpStream, Response = (), Error = ()>, ()> {
        let dispatcher = HttpService::build()
            .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
            .client_request_timeout(REQUEST_TIMEOUT)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(addr)
            .h1(map_config(super::app(state.clone()).into_factory(), |_| {
                AppConfig::default()
            }))
            .tcp()
            .map_err(drop)
            .new_service(())
            .await?;
        let app = super::app(state)
            .into_factory()
            .new_service(AppConfig::default())
            .await?;
        let front = Rc::new(Front { dispatcher, app });
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
    H: Service<TcpStream, Response = (), Error = ()>,
    A: Service<Request, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    async fn connection(&self, stream: TcpStream) {
        // Each way is boxed (the compiler would otherwise size every connection's task
        // for the largest of them, and for the locals moved out before it).
        let request = Box::pin(tokio::time::timeout(
            REQUEST_TIMEOUT,
            stream_request(&stream),
        ))
        .await;
        match request {
            Ok(Some(request)) => Box::pin(self.stream(stream, request)).await,
            _ => {
                let _ = Box::pin(self.dispatcher.call(stream)).await;
            }
        }
    }

    /// Answers a stream request on the socket, and keeps the connection only as long
    /// as the answer is a stream that goes on.
    async fn stream(&self, mut stream: TcpStream, request: Request) {
        let _ = stream.set_nodelay(true);
        if let Some(body) = Box::pin(self.answer(&mut stream, request)).await {
            let _ = pump(&mut stream, body).await;
        }
        let _ = stream.shutdown().await;
    }

    /// Runs the request through the app and writes the response's head, and its body
    /// when that has a length; returns a stream body still to be written.
    async fn answer(&self, stream: &mut TcpStream, request: Request) -> Option<BoxBody> {
        let response = match self.app.call(request).await {
            Ok(response) => response.into_parts().1.map_into_boxed_body(),
            Err(e) => e.as_response_error().error_response(),
        };
        let (head, length, body) = encode_head(response);
        stream.write_all(&head).await.ok()?;
        match length {
            None => Some(body),
            Some(0) => None,
            Some(_) => {
                let bytes = body::to_bytes(body).await.ok()?;
                stream.write_all(&bytes).await.ok()?;
                None
            }
        }
    }
}

/// Reads the first request's head, and takes it off the socket only when it is a
/// whole `GET` of an event stream with no body and no upgrade; otherwise leaves it
/// there for the dispatcher.
async fn stream_request(stream: &TcpStream) -> Option<Request> {
    let mut buf = vec![0; HEAD_LIMIT];
    let n = stream.peek(&mut buf).await.ok()?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = head.parse(&buf[..n]).ok()? else {
        return None;
    };
    if head.method != Some("GET") || !opens_stream(head.path?) {
        return None;
    }
    let mut request = Request::new();
    let out = request.head_mut();
    out.method = Method::GET;
    out.uri = Uri::try_from(head.path?).ok()?;
    out.version = match head.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    out.peer_addr = stream.peer_addr().ok();
    for h in head.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == "upgrade" || name == "content-length" || name == "transfer-encoding" {
            return None;
        }
        out.headers
            .append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    // The head was peeked, so it is all there to read.
    let mut taken = 0;
    while taken < len {
        stream.readable().await.ok()?;
        match stream.try_read(&mut buf[taken..len]) {
            Ok(0) => return None,
            Ok(n) => taken += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
    Some(request)
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
async fn pump(stream: &mut TcpStream, mut body: BoxBody) -> io::Result<()> {
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(ready) = stream.poll_read_ready(cx) {
                return Poll::Ready(Next::Readable(ready));
            }
            Pin::new(&mut body).poll_next(cx).map(Next::Chunk)
        })
        .await;
        match next {
            Next::Chunk(Some(Ok(bytes))) => stream.write_all(&bytes).await?,
            Next::Chunk(_) => return Ok(()),
            Next::Readable(ready) => {
                ready?;
                // Anything the client sends now is ignored; end of stream means it left.
                match stream.try_read(&mut [0; 256]) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

enum Next<C> {
    Chunk(Option<C>),
    Readable(io::Result<()>),
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
        assert!(!opens_stream("/alerts"));
        assert!(!opens_stream("//sse"));
        assert!(!opens_stream("/api/topics/sse"));
        assert!(!opens_stream("/api/keys"));
        assert!(!opens_stream("*"));
    }
}
