//! Checks a connection's first request head before the HTTP/1 dispatcher sees it, so
//! that every head the dispatcher would refuse is refused here, with a JSON body.
//!
//! Pure: bytes in, a verdict out, no I/O and no panic on any input (a fuzz target
//! calls [`check_head`] with arbitrary bytes).

use actix_web::http::{Method, Uri};

use crate::error::detail;

/// Headers a request may have (as many as the dispatcher reads; more is a 431).
pub const MAX_HEADERS: usize = 96;
/// The longest request target (path and query); longer is a 414.
pub const MAX_TARGET: usize = 16 * 1024;
/// The largest request head; larger is a 431.
pub const MAX_HEAD: usize = 64 * 1024;

/// A complete, valid request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'b> {
    /// Bytes the head takes, its final blank line included.
    pub len: usize,
    pub method: &'b str,
    pub target: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub body: Body,
    /// An `Upgrade` header is present.
    pub upgrade: bool,
}

/// How the request says its body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Neither `Content-Length` nor `Transfer-Encoding`.
    None,
    Length(u64),
    Chunked,
}

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// 400, with the reason.
    #[error("{0}")]
    Malformed(&'static str),
    /// 414.
    #[error("{}", detail::URI_TOO_LONG)]
    TargetTooLong,
    /// 431: too many headers, or a head larger than [`MAX_HEAD`].
    #[error("{}", detail::HEADERS_TOO_LARGE)]
    TooLarge,
}

/// `Ok(None)` while the head is incomplete (read more, then call again with all the
/// bytes so far); `Ok(Some(head))` once it is whole and valid; `Err` when it is refused.
pub fn check_head(buf: &[u8]) -> Result<Option<Head<'_>>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    parse_head(buf, &mut headers).map(|parsed| parsed.map(|(head, _)| head))
}

/// Like [`check_head`], leaving the headers in `headers`; also returns their number.
pub fn parse_head<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>; MAX_HEADERS],
) -> Result<Option<(Head<'b>, usize)>, HeadError> {
    let mut request = httparse::Request::new(headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return incomplete(buf),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed(detail::MALFORMED_HEAD)),
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(HeadError::Malformed(detail::MALFORMED_HEAD));
    };
    // httparse takes any token as a method; the dispatcher only what `http` does.
    if Method::from_bytes(method.as_bytes()).is_err() {
        return Err(HeadError::Malformed(detail::MALFORMED_HEAD));
    }
    if target.len() > MAX_TARGET {
        return Err(HeadError::TargetTooLong);
    }
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    if Uri::try_from(target).is_err() {
        return Err(HeadError::Malformed(detail::INVALID_TARGET));
    }
    let count = request.headers.len();
    let framing = framing(request.headers, version)?;
    // HTTP/1.0 has no chunks: a POST without a length has no way to end its body.
    if version == 0 && method == "POST" && framing.body == Body::None {
        return Err(HeadError::Malformed(detail::MISSING_CONTENT_LENGTH));
    }
    Ok(Some((
        Head {
            len,
            method,
            target,
            version,
            body: framing.body,
            upgrade: framing.upgrade,
        },
        count,
    )))
}

/// The status of an error answer (4xx, 5xx) written as a bare head with an empty body
/// and nothing after it: what the HTTP/1 dispatcher writes itself when it cannot
/// parse a later request of a kept-alive connection. `None` for anything else (every
/// answer of the app has a body). Cheap for the common case: a 2xx is told by its
/// first 10 bytes.
pub fn empty_error_status(written: &[u8]) -> Option<u16> {
    let rest = written
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| written.strip_prefix(b"HTTP/1.0 "))?;
    if !matches!(rest.first(), Some(b'4' | b'5')) {
        return None;
    }
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let end = written.windows(4).position(|w| w == b"\r\n\r\n")?;
    let empty = written
        .split(|&b| b == b'\n')
        .any(|line| line.eq_ignore_ascii_case(b"content-length: 0\r"));
    (end + 4 == written.len() && empty).then_some(status)
}

/// An incomplete head may already be too long to ever be accepted.
fn incomplete(buf: &[u8]) -> Result<Option<(Head<'_>, usize)>, HeadError> {
    // The request line is the method, the target and ` HTTP/1.1`.
    let line = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    if line > MAX_TARGET + 32 {
        return Err(HeadError::TargetTooLong);
    }
    if buf.len() >= MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    Ok(None)
}

struct Framing {
    body: Body,
    upgrade: bool,
}

/// The body's framing, refusing what could be read two ways (request smuggling): the
/// same rules as the dispatcher's, so that no head passes here and fails there.
fn framing(headers: &[httparse::Header<'_>], version: u8) -> Result<Framing, HeadError> {
    let mut length = None;
    let mut transfer_encoding = false;
    let mut host = false;
    let mut upgrade = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(HeadError::Malformed(detail::DUPLICATE_CONTENT_LENGTH));
            }
            length = Some(content_length(h.value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if transfer_encoding {
                return Err(HeadError::Malformed(detail::DUPLICATE_TRANSFER_ENCODING));
            }
            transfer_encoding = true;
            let value = std::str::from_utf8(h.value).map(str::trim);
            if version == 0 || !value.is_ok_and(|v| v.eq_ignore_ascii_case("chunked")) {
                return Err(HeadError::Malformed(detail::UNSUPPORTED_TRANSFER_ENCODING));
            }
        } else if name.eq_ignore_ascii_case("host") {
            if host {
                return Err(HeadError::Malformed(detail::DUPLICATE_HOST));
            }
            host = true;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if version == 1 && !host {
        return Err(HeadError::Malformed(detail::MISSING_HOST));
    }
    let body = match (length, transfer_encoding) {
        (Some(_), true) => return Err(HeadError::Malformed(detail::LENGTH_WITH_CHUNKED)),
        (_, true) => Body::Chunked,
        (Some(n), false) => Body::Length(n),
        (None, false) => Body::None,
    };
    Ok(Framing { body, upgrade })
}

/// Digits only (no sign, no list), as the dispatcher reads it.
fn content_length(value: &[u8]) -> Result<u64, HeadError> {
    let invalid = HeadError::Malformed(detail::INVALID_CONTENT_LENGTH);
    let text = std::str::from_utf8(value).map_err(|_| invalid)?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    text.parse().map_err(|_| invalid)
}

impl From<HeadError> for crate::error::ApiError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Malformed(detail) => Self::bad_request(detail),
            HeadError::TargetTooLong => Self::UriTooLong,
            HeadError::TooLarge => Self::HeadersTooLarge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_1_0_post_needs_a_length() {
        let head = b"POST /backups HTTP/1.0\r\nHost: x\r\n\r\n";
        assert_eq!(
            check_head(head),
            Err(HeadError::Malformed(detail::MISSING_CONTENT_LENGTH))
        );
        let head = b"POST /backups HTTP/1.0\r\nContent-Length: 1\r\n\r\nx";
        assert!(matches!(check_head(head), Ok(Some(_))));
    }

    #[test]
    fn a_method_the_dispatcher_would_refuse_is_refused_here() {
        let head = b"P$ST /backups HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            check_head(head),
            Err(HeadError::Malformed(detail::MALFORMED_HEAD))
        );
    }

    #[test]
    fn bare_error_heads_are_told_from_every_other_answer() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        assert_eq!(empty_error_status(bare), Some(400));
        let timeout = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(empty_error_status(timeout), Some(408));
        let with_body = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(empty_error_status(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(empty_error_status(ok), None);
        let two = [&bare[..], &bare[..]].concat();
        assert_eq!(empty_error_status(&two), None, "not a head alone");
        assert_eq!(empty_error_status(b"HTTP/1.1 4"), None);
    }

    fn check(head: &str) -> Result<Option<Head<'_>>, HeadError> {
        check_head(head.as_bytes())
    }

    #[test]
    fn a_whole_head_is_read_with_its_framing() {
        let text = "POST /alerts?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        let head = check(text).unwrap().unwrap();
        assert_eq!(head.len, text.len() - 5);
        assert_eq!((head.method, head.target), ("POST", "/alerts?x=1"));
        assert_eq!(head.body, Body::Length(5));
        let ws = "GET /a/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        assert!(check(ws).unwrap().unwrap().upgrade);
        let chunked = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check(chunked).unwrap().unwrap().body, Body::Chunked);
        assert_eq!(
            check("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().body,
            Body::None
        );
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert_eq!(check(""), Ok(None));
        assert_eq!(check("GET /health HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    }

    #[test]
    fn ambiguous_framing_and_bad_syntax_are_refused() {
        let cases = [
            (
                "Content-Length: 1\r\nContent-Length: 1",
                "Duplicate Content-Length",
            ),
            (
                "Content-Length: 1\r\nTransfer-Encoding: chunked",
                "Content-Length and Transfer-Encoding together",
            ),
            ("Content-Length: +1", "Invalid Content-Length"),
            ("Content-Length: 1, 1", "Invalid Content-Length"),
            ("Transfer-Encoding: gzip", "Unsupported Transfer-Encoding"),
            ("Host: b", "Duplicate Host header"),
            ("X: a\rb", "Malformed request head"),
        ];
        for (extra, detail) in cases {
            let head = format!("POST /a HTTP/1.1\r\nHost: a\r\n{extra}\r\n\r\n");
            assert_eq!(check(&head), Err(HeadError::Malformed(detail)), "{extra}");
        }
        assert_eq!(
            check("GET / HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed(detail::MISSING_HOST))
        );
    }

    #[test]
    fn oversized_heads_are_refused_early() {
        let long_target = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_TARGET + 64));
        assert_eq!(
            check(&long_target[..MAX_TARGET + 40]),
            Err(HeadError::TargetTooLong)
        );
        assert_eq!(check(&long_target), Err(HeadError::TargetTooLong));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        let head = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(check(&head), Err(HeadError::TooLarge));
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(check(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"GET /a HTTP/1.1\r\n:Host-Length0 \t\x00\xff"[(seed % 34) as usize]
                })
                .collect();
            let _ = check_head(&bytes);
        }
    }
}
