//! The body deadline: a request body must arrive within `limits.body_timeout` of its
//! head. Past it, reading the body fails (the handler answers 408 `Request timeout`)
//! and the connection is closed, so a body trickled byte by byte cannot hold it.
//!
//! Only requests that announce a body are timed; WebSocket upgrades and streams have
//! none. The common case, a body already here, costs one small allocation and no timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::ConnectionType;
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::HttpMessage;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::timer::LazyTimer;

/// Middleware: times each request body against `timeout`.
pub struct BodyDeadline {
    pub timeout: Duration,
}

impl<S, B> Transform<S, ServiceRequest> for BodyDeadline
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = BodyDeadlineService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(BodyDeadlineService {
            service,
            timeout: self.timeout,
        }))
    }
}

pub struct BodyDeadlineService<S> {
    service: S,
    timeout: Duration,
}

impl<S, B> Service<ServiceRequest> for BodyDeadlineService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Timed<S::Future>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let timed = announces_body(&req);
        if timed {
            let payload = Deadline {
                payload: req.take_payload(),
                at: Instant::now() + self.timeout,
                timer: LazyTimer::default(),
                expired: false,
                chunked: req.headers().contains_key(header::TRANSFER_ENCODING),
                finished: false,
            };
            req.set_payload(Payload::Stream {
                payload: Box::pin(payload),
            });
        }
        Timed {
            inner: self.service.call(req),
            timed,
        }
    }
}

/// `Content-Length` other than 0, or any `Transfer-Encoding`.
fn announces_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

pin_project_lite::pin_project! {
    /// The handler's answer; one whose body timed out also closes the connection (the
    /// rest of the body may still be on its way).
    pub struct Timed<F> {
        #[pin]
        inner: F,
        timed: bool,
    }
}

impl<F, B> Future for Timed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let Ok(res) = &mut result {
            // Only the deadline answers 408 to a request with a body.
            if *this.timed && res.status() == StatusCode::REQUEST_TIMEOUT {
                res.response_mut()
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
            }
        }
        Poll::Ready(result)
    }
}

/// How long a chunked body left unread is held after its handler is done: past the
/// dispatcher's choice, made as it sends the answer, to close the connection.
const UNREAD_HOLD: Duration = Duration::from_secs(1);

/// A request body that fails once its deadline passes.
struct Deadline {
    payload: Payload,
    at: Instant,
    /// Armed only when the body has to be waited for.
    timer: LazyTimer,
    expired: bool,
    chunked: bool,
    /// The body was read to its end (or failed).
    finished: bool,
}

impl Drop for Deadline {
    fn drop(&mut self) {
        // The dispatcher drains a dropped chunked body for as long as the client
        // trickles it; one still held when the answer goes out makes it close the
        // connection instead, as it does for any body left unread.
        if self.chunked && !self.finished {
            let payload = std::mem::replace(&mut self.payload, Payload::None);
            actix_web::rt::spawn(async move {
                tokio::time::sleep(UNREAD_HOLD).await;
                drop(payload);
            });
        }
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.payload).poll_next(cx) {
            self.finished = !matches!(item, Some(Ok(_)));
            return Poll::Ready(item);
        }
        let at = self.at;
        std::task::ready!(self.timer.poll_until(at, cx));
        self.expired = true;
        let cut = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body timed out");
        Poll::Ready(Some(Err(PayloadError::Io(cut))))
    }
}
