//! The ceiling: the least work a broadcast server over HTTP can do, to put the load
//! generator's numbers for real brokers in proportion. One `tokio::sync::broadcast`
//! per topic; `POST /{topic}` sends the raw body, `GET /{topic}/sse` streams it as a
//! `data:` line, `GET /{topic}/ws` as a WebSocket text frame. No auth, no storage, no JSON.
//!
//! `cargo bench --bench ceiling -- --listen 127.0.0.1:8090 [--workers 2]`; without the
//! `--bench` that `cargo bench` passes (as under `cargo test --benches`) it does nothing.

#[allow(dead_code)]
#[path = "ws.rs"]
mod ws;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http_body::{Body as _, Frame};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Deep enough that no subscriber lags in the scenarios.
const CHANNEL_CAPACITY: usize = 16 * 1024;

#[derive(Clone, Default)]
struct Topics(Arc<Mutex<HashMap<String, broadcast::Sender<Bytes>>>>);

impl Topics {
    fn sender(&self, topic: &str) -> broadcast::Sender<Bytes> {
        let mut topics = self.0.lock().expect("topics lock");
        topics
            .entry(topic.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .clone()
    }
}

/// A whole body, or a stream of frames that ends when the topic's channel closes.
enum Body {
    Full(Option<Bytes>),
    Stream(BoxStream<'static, Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => s.poll_next_unpin(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }
}

fn respond(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::Full(Some(Bytes::from_static(body.as_bytes()))));
    *response.status_mut() = status;
    response
}

/// The next message; a subscriber that lags skips what it missed.
async fn recv(rx: &mut broadcast::Receiver<Bytes>) -> Option<Bytes> {
    loop {
        match rx.recv().await {
            Ok(body) => return Some(body),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

async fn read_body(mut body: Incoming) -> Bytes {
    let mut out = Vec::new();
    while let Some(Ok(frame)) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Some(data) = frame.data_ref() {
            out.extend_from_slice(data);
        }
    }
    out.into()
}

async fn handle(req: Request<Incoming>, topics: Topics) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().trim_start_matches('/').to_string();
    let mut parts = path.splitn(2, '/');
    let (topic, kind) = (parts.next().unwrap_or(""), parts.next());
    if topic.is_empty() {
        return Ok(respond(StatusCode::NOT_FOUND, "not found\n"));
    }
    let response = match (req.method(), kind) {
        (&Method::POST | &Method::PUT, None) => {
            let sender = topics.sender(topic);
            let _ = sender.send(read_body(req.into_body()).await);
            respond(StatusCode::OK, "ok\n")
        }
        (&Method::GET, Some("sse")) => {
            let rx = topics.sender(topic).subscribe();
            let events = stream::unfold(rx, |mut rx| async move {
                let body = recv(&mut rx).await?;
                let mut event = Vec::with_capacity(body.len() + 8);
                event.extend_from_slice(b"data: ");
                event.extend_from_slice(&body);
                event.extend_from_slice(b"\n\n");
                Some((Bytes::from(event), rx))
            });
            // A comment first, so the client sees the headers at once.
            let body = stream::once(async { Bytes::from_static(b":\n\n") }).chain(events);
            let mut response = Response::new(Body::Stream(body.boxed()));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                "text/event-stream".parse().expect("header"),
            );
            response
        }
        (&Method::GET, Some("ws")) => websocket(req, topics.sender(topic).subscribe()),
        _ => respond(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

/// Answers the upgrade, then writes each message as a text frame until either side ends.
fn websocket(mut req: Request<Incoming>, mut rx: broadcast::Receiver<Bytes>) -> Response<Body> {
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .map(ws::accept_key)
    else {
        return respond(StatusCode::BAD_REQUEST, "not a websocket request\n");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        let mut scratch = [0u8; 512];
        loop {
            tokio::select! {
                body = recv(&mut rx) => {
                    let Some(body) = body else { break };
                    if writer.write_all(&ws::frame(ws::TEXT, &body, None)).await.is_err() {
                        break;
                    }
                }
                read = reader.read(&mut scratch) => {
                    // What clients send (a close, pongs) is not needed: stop at the end.
                    if matches!(read, Ok(0) | Err(_)) {
                        break;
                    }
                }
            }
        }
    });
    let mut response = respond(StatusCode::SWITCHING_PROTOCOLS, "");
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONNECTION,
        "upgrade".parse().expect("header"),
    );
    headers.insert(hyper::header::UPGRADE, "websocket".parse().expect("header"));
    headers.insert("sec-websocket-accept", key.parse().expect("header"));
    response
}

async fn serve(listen: String) {
    let listener = TcpListener::bind(&listen).await.expect("cannot listen");
    let addr = listener.local_addr().expect("local address");
    println!("ceiling listening on http://{addr}");
    let topics = Topics::default();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors: wait for some to close.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let topics = topics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, topics.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let listen = option("--listen").unwrap_or_else(|| "127.0.0.1:8090".into());
    let workers = option("--workers")
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(serve(listen));
}
