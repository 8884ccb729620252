//! The access log: one line per request (target `tidings::access`) and one per
//! authentication failure (target `tidings::auth`), as structured `tracing` events.
//!
//! A line names the method, the path with every credential in its query redacted, the
//! status, the time until the answer's head, the client IP (the one the rate limits
//! use) and the kind of credential presented — never a secret. A stream (SSE, NDJSON,
//! raw, WebSocket) gets a second line when it ends, with how long it lasted.
//!
//! On the publish path the fields are written straight into the log line: nothing is
//! allocated to build them.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::{HttpMessage, HttpRequest, ResponseError};
use bytes::Bytes;

use crate::auth::credential::Credential;
use crate::error::ApiError;
use crate::metrics::{auth_failure_reason, METRICS};

/// Query parameters whose value is (part of) a credential: `token`, `api_key`, a
/// browser's `client_key`, `user_key` and `user_id` (`user_id` stands for a user in
/// development mode), `auth`, which ntfy clients send, and the `code` and `state` an
/// OpenID Connect provider sends back to a sign-in's callback.
const SECRET_PARAMS: [&str; 8] = [
    "token",
    "api_key",
    "client_key",
    "user_key",
    "user_id",
    "auth",
    "code",
    "state",
];
/// What a redacted value reads as.
const REDACTED: &str = "REDACTED";

/// Middleware: logs each request once its answer's head is ready.
pub struct AccessLog {
    /// Behind a proxy the client IP is the proxy's `X-Forwarded-For` hop.
    pub behind_proxy: bool,
}

impl<S, B> Transform<S, ServiceRequest> for AccessLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B, Streamed<B>>>;
    type Error = actix_web::Error;
    type Transform = AccessLogService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(AccessLogService {
            service,
            behind_proxy: self.behind_proxy,
        }))
    }
}

pub struct AccessLogService<S> {
    service: S,
    behind_proxy: bool,
}

impl<S, B> Service<ServiceRequest> for AccessLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B, Streamed<B>>>;
    type Error = actix_web::Error;
    type Future = Logged<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Logged {
            // Standard methods are copied, not allocated.
            method: req.method().clone(),
            started: Instant::now(),
            behind_proxy: self.behind_proxy,
            inner: self.service.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer to come; logged when it is ready.
    pub struct Logged<F> {
        #[pin]
        inner: F,
        method: Method,
        started: Instant,
        behind_proxy: bool,
    }
}

impl<F, B> Future for Logged<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<EitherBody<B, Streamed<B>>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = match std::task::ready!(this.inner.poll(cx)) {
            Ok(res) => res,
            Err(e) => {
                // Only a failed middleware gets here; its request is gone.
                let status = e.as_response_error().status_code();
                tracing::info!(
                    target: "tidings::access",
                    method = %this.method,
                    status = status.as_u16(),
                    duration_ms = millis(*this.started),
                    "request"
                );
                return Poll::Ready(Err(e));
            }
        };
        let req = res.request();
        let line = Line {
            req,
            ip: super::client_ip(req, *this.behind_proxy),
            credential: credential_kind(req),
        };
        line.request(res.status(), *this.started);
        if res.status() == StatusCode::OK && super::publish::is_publish(req) {
            METRICS.publish_answered(*this.started);
        }
        if let Some(e) = res
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
        {
            line.auth_failure(e);
        }
        if res.response().body().size() != BodySize::Stream {
            return Poll::Ready(Ok(res.map_into_left_body()));
        }
        let stream = StreamEnd {
            uri: req.uri().clone(),
            ip: line.ip,
            credential: line.credential,
            started: *this.started,
        };
        Poll::Ready(Ok(res.map_body(|_, body| {
            EitherBody::right(Streamed { body, end: stream })
        })))
    }
}

/// The line for a connection the front refuses before the app sees its request (a
/// malformed or slow head, a connection over a cap): its answer and the peer. The
/// request itself is not logged: it may be garbage, or carry secrets in its query.
pub fn refused(error: &ApiError, peer: Option<std::net::SocketAddr>, started: Instant) {
    let detail = error.to_string();
    tracing::info!(
        target: "tidings::access",
        status = error.status_code().as_u16(),
        detail = detail.as_str(),
        duration_ms = millis(started),
        ip = %Ip(peer.map(|a| a.ip())),
        "refused"
    );
}

/// What a request's lines say about it.
struct Line<'a> {
    req: &'a HttpRequest,
    ip: Option<IpAddr>,
    credential: &'static str,
}

impl Line<'_> {
    fn request(&self, status: StatusCode, started: Instant) {
        tracing::info!(
            target: "tidings::access",
            method = %self.req.method(),
            path = %Redacted(self.req.uri()),
            status = status.as_u16(),
            duration_ms = millis(started),
            ip = %Ip(self.ip),
            credential = %self.credential,
            "request"
        );
    }

    /// A line for an answer that refuses the request's credentials (or their lack).
    fn auth_failure(&self, error: &ApiError) {
        let Some(reason) = auth_failure_reason(error) else {
            return;
        };
        // Quoted in text lines (it has spaces); the failure path may allocate.
        let detail = error.to_string();
        tracing::warn!(
            target: "tidings::auth",
            reason = %reason,
            detail = detail.as_str(),
            method = %self.req.method(),
            path = %Redacted(self.req.uri()),
            ip = %Ip(self.ip),
            credential = %self.credential,
            "authentication failed"
        );
    }
}

/// What a stream's last line needs (the request itself is not kept while it lasts).
pub struct StreamEnd {
    uri: Uri,
    ip: Option<IpAddr>,
    credential: &'static str,
    started: Instant,
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        tracing::info!(
            target: "tidings::access",
            path = %Redacted(&self.uri),
            duration_ms = millis(self.started),
            ip = %Ip(self.ip),
            credential = %self.credential,
            "stream ended"
        );
    }
}

pin_project_lite::pin_project! {
    /// A stream's body: logs its end when it is dropped (its last chunk written, or
    /// the client gone).
    pub struct Streamed<B> {
        #[pin]
        body: B,
        end: StreamEnd,
    }
}

impl<B: MessageBody> MessageBody for Streamed<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}

/// Milliseconds since `since`, to the microsecond.
fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// The kind of credential a request presents, as [`Presented`] noted it when the
/// credentials were read; read here only for requests nothing else read them for
/// (probes, the app's files, preflights).
fn credential_kind(req: &HttpRequest) -> &'static str {
    if let Some(Presented(kind)) = req.extensions().get::<Presented>() {
        return kind;
    }
    Presented::of(&Credential::all_from_request(req)).0
}

/// The kind of credential a request presents, noted in its extensions where its
/// credentials are read (so that its log line need not read them again): the first
/// one in the order they are looked for ([`Credential::all_from_request`]):
/// `topic_token`, `api_key`, `jwt`, `password`, `client`; `none`, or `other` for one
/// that cannot be read.
#[derive(Clone, Copy)]
pub struct Presented(&'static str);

impl Presented {
    pub fn of(credentials: &Result<Vec<Credential>, ApiError>) -> Self {
        Self(match credentials {
            Ok(found) => found.first().map_or("none", Credential::kind),
            Err(_) => "other",
        })
    }
}

/// Whether a query parameter's name, URL-decoded, is `wanted` (`api%5Fkey` is
/// `api_key` to the server, so it is to the log too).
fn decodes_to(raw: &str, wanted: &str) -> bool {
    let mut raw = raw.bytes();
    let mut wanted = wanted.bytes();
    loop {
        let got = match raw.next() {
            Some(b'%') => {
                let hex = [raw.next(), raw.next()];
                let digit = |d: Option<u8>| (d? as char).to_digit(16);
                match (digit(hex[0]), digit(hex[1])) {
                    (Some(hi), Some(lo)) => Some((hi * 16 + lo) as u8),
                    _ => return false,
                }
            }
            Some(b'+') => Some(b' '),
            other => other,
        };
        match (got, wanted.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// A request's path and query, with every credential's value replaced by `REDACTED`.
struct Redacted<'a>(&'a Uri);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        f.write_str("?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((name, _)) if SECRET_PARAMS.iter().any(|p| decodes_to(name, p)) => {
                    write!(f, "{name}={REDACTED}")?;
                }
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

/// The client IP, `-` when unknown.
struct Ip(Option<IpAddr>);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn redacted(target: &str) -> String {
        Redacted(&target.parse().unwrap()).to_string()
    }

    #[test]
    fn every_credential_in_the_query_is_redacted() {
        assert_eq!(redacted("/alerts"), "/alerts");
        assert_eq!(
            redacted("/a/sse?since=all&api_key=noti_x&token=tk_y"),
            "/a/sse?since=all&api_key=REDACTED&token=REDACTED"
        );
        assert_eq!(
            redacted("/a/ws?client_key=c&user_key=u&user_id=7&auth=QmFzaWM"),
            "/a/ws?client_key=REDACTED&user_key=REDACTED&user_id=REDACTED&auth=REDACTED"
        );
        assert_eq!(
            redacted("/a/json?api%5Fkey=noti_x"),
            "/a/json?api%5Fkey=REDACTED"
        );
        assert_eq!(
            redacted("/a/json?tokens=1&poll=1"),
            "/a/json?tokens=1&poll=1"
        );
        assert_eq!(
            redacted("/auth/g/callback?state=s&code=c&scope=openid"),
            "/auth/g/callback?state=REDACTED&code=REDACTED&scope=openid"
        );
    }

    #[test]
    fn the_credential_kind_is_named_not_shown() {
        let kind = |req: TestRequest| credential_kind(&req.to_http_request());
        assert_eq!(kind(TestRequest::with_uri("/a")), "none");
        assert_eq!(kind(TestRequest::with_uri("/a?api_key=noti_x")), "api_key");
        assert_eq!(kind(TestRequest::with_uri("/a?token=tk_x")), "topic_token");
        assert_eq!(kind(TestRequest::with_uri("/a?token=eyJ.a.b")), "jwt");
        assert_eq!(
            kind(TestRequest::with_uri("/a?client_key=c&user_id=1")),
            "client"
        );
        let bearer = TestRequest::default().insert_header(("Authorization", "Bearer noti_x"));
        assert_eq!(kind(bearer), "api_key");
        let basic = TestRequest::default().insert_header(("Authorization", "Basic eDp5"));
        assert_eq!(kind(basic), "password");
        let ntfy = TestRequest::with_uri("/a?auth=QmVhcmVyIG5vdGlfeA");
        assert_eq!(kind(ntfy), "api_key");
        let unreadable = TestRequest::default().insert_header(("Authorization", "Digest x"));
        assert_eq!(kind(unreadable), "other");
        let token = TestRequest::default().insert_header(("X-Topic-Token", "tk_x"));
        assert_eq!(kind(token), "topic_token");
    }
}
