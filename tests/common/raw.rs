//! Raw TCP clients, for heads and bodies no client library would send and for
//! subscribers that must run on a thread or never read: one-off HTTP/1.1 exchanges and
//! a blocking SSE reader that decodes chunked bodies itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::streams::SseEvent;
use super::{parse_json, remaining};

/// The body of an HTTP/1.1 response, with chunked transfer coding removed.
struct Body {
    inner: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk.
    remaining: usize,
    /// A chunk-size line read in part before a timeout.
    size_line: Vec<u8>,
    /// The last chunk (or the end of the connection) was seen.
    ended: bool,
    bytes_read: usize,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        if self.chunked && self.remaining == 0 {
            // A size line, possibly after the CRLF that ends the previous chunk.
            loop {
                let before = self.size_line.len();
                self.inner.read_until(b'\n', &mut self.size_line)?;
                self.bytes_read += self.size_line.len() - before;
                if self.size_line.len() == before || !self.size_line.ends_with(b"\n") {
                    self.ended = true;
                    return Ok(0);
                }
                let line = String::from_utf8_lossy(&self.size_line).trim().to_string();
                self.size_line.clear();
                if line.is_empty() {
                    continue;
                }
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
                if size == 0 {
                    self.ended = true;
                    return Ok(0);
                }
                self.remaining = size;
                break;
            }
        }
        let want = if self.chunked {
            buf.len().min(self.remaining)
        } else {
            buf.len()
        };
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.ended = true;
        }
        if self.chunked {
            self.remaining -= n;
        }
        self.bytes_read += n;
        Ok(n)
    }
}

/// An SSE subscription over a plain `std::net::TcpStream`: the HTTP/1.1 request is
/// written by hand and the chunked body decoded here, so it can run on a thread, or
/// simply never read.
pub struct TcpSse {
    /// For setting read timeouts.
    socket: TcpStream,
    reader: BufReader<Body>,
    /// A line read in part before a timeout.
    line: Vec<u8>,
    /// The event being assembled.
    event: Option<SseEvent>,
    pub status: u16,
    /// The response ended (its last chunk, or the connection's end, was read).
    pub ended: bool,
}

impl TcpSse {
    /// Connects and sends the request; reads nothing.
    pub fn send_request(addr: &str, path_and_query: &str) -> TcpSse {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("send request");
        let socket = stream.try_clone().expect("clone socket");
        let body = Body {
            inner: BufReader::with_capacity(64 * 1024, stream),
            chunked: false,
            remaining: 0,
            size_line: Vec::new(),
            ended: false,
            bytes_read: 0,
        };
        TcpSse {
            socket,
            reader: BufReader::with_capacity(64 * 1024, body),
            line: Vec::new(),
            event: None,
            status: 0,
            ended: false,
        }
    }

    /// Connects and reads the response head.
    pub fn connect(addr: &str, path_and_query: &str, timeout: Duration) -> TcpSse {
        let mut sse = Self::send_request(addr, path_and_query);
        sse.read_head(timeout);
        sse
    }

    /// Every byte received so far (head, chunk framing and body).
    pub fn bytes_read(&self) -> usize {
        self.reader.get_ref().bytes_read
    }

    /// Reads the status line and headers.
    pub fn read_head(&mut self, timeout: Duration) {
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
        let inner = &mut self.reader.get_mut().inner;
        let mut head = Vec::new();
        loop {
            let before = head.len();
            let n = inner
                .read_until(b'\n', &mut head)
                .unwrap_or_else(|e| panic!("no response head within {timeout:?}: {e}"));
            assert!(n > 0, "connection closed before the response head");
            if head[before..].trim_ascii().is_empty() {
                break;
            }
        }
        self.reader.get_mut().bytes_read += head.len();
        let head = String::from_utf8_lossy(&head).to_string();
        let mut lines = head.lines();
        self.status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.reader.get_mut().chunked = lines.any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
    }

    /// The next line of the body (without `\n`); `None` on timeout or end.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let left = remaining(deadline);
            if left.is_zero() {
                return None;
            }
            self.socket
                .set_read_timeout(Some(left))
                .expect("set read timeout");
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(_) if self.line.ends_with(b"\n") => {
                    self.line.pop();
                    let text = String::from_utf8_lossy(&self.line).to_string();
                    self.line.clear();
                    return Some(text);
                }
                Ok(_) => {
                    // End of the body.
                    self.ended = true;
                    return None;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }

    /// The next event, or `None` on timeout or end of stream.
    pub fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline)?;
            if line.is_empty() {
                if let Some(event) = self.event.take() {
                    return Some(event);
                }
                continue;
            }
            let event = self.event.get_or_insert_with(|| SseEvent {
                event: "message".into(),
                id: None,
                data: String::new(),
            });
            if let Some(v) = line.strip_prefix("event: ") {
                event.event = v.to_string();
            } else if let Some(v) = line.strip_prefix("id: ") {
                event.id = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                event.data.push_str(v);
            }
        }
    }

    /// Events until the stream ends or `timeout` passes.
    pub fn events_until_end(&mut self, timeout: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        while let Some(event) = self.next_event(remaining(deadline)) {
            events.push(event);
        }
        events
    }
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// The head's header lines, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, checking it is sent as JSON.
    pub fn json(&self) -> Value {
        let content_type = self.header("content-type").unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "status {}: content type {content_type:?}, body {:?}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        parse_json(&self.body, "raw response")
    }
}

/// Connects to `addr` and writes `bytes`.
pub fn raw_connect(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(bytes).expect("write request");
    stream
}

/// Reads from `stream` into `data` until `done` finds what it waits for in all that
/// has arrived, panicking when the connection closes first or `deadline` passes.
fn read_until_found<T>(
    stream: &mut TcpStream,
    deadline: Instant,
    data: &mut Vec<u8>,
    mut done: impl FnMut(&[u8]) -> Option<T>,
) -> T {
    let mut chunk = [0; 8192];
    loop {
        if let Some(found) = done(data) {
            return found;
        }
        let left = remaining(deadline);
        assert!(!left.is_zero(), "not found in time: {data:?}");
        stream
            .set_read_timeout(Some(left))
            .expect("set read timeout");
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("not found in time ({e}): {data:?}"));
        assert!(n > 0, "connection closed first: {data:?}");
        data.extend_from_slice(&chunk[..n]);
    }
}

/// Reads from a raw socket until `wanted` has arrived, within `timeout`; returns all
/// that was read.
pub fn raw_read_until(stream: &mut TcpStream, wanted: &str, timeout: Duration) -> String {
    let mut data = Vec::new();
    read_until_found(stream, Instant::now() + timeout, &mut data, |seen| {
        String::from_utf8_lossy(seen).contains(wanted).then_some(())
    });
    String::from_utf8_lossy(&data).into_owned()
}

/// Reads one response (head, then a body of its `content-length`) within `timeout`.
pub fn raw_response(stream: &mut TcpStream, timeout: Duration) -> RawResponse {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    let head_end = read_until_found(stream, deadline, &mut data, |seen| {
        Some(seen.windows(4).position(|w| w == b"\r\n\r\n")? + 4)
    });
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    read_until_found(stream, deadline, &mut data, |seen| {
        (seen.len() >= head_end + length).then_some(())
    });
    RawResponse {
        status,
        headers,
        body: data[head_end..head_end + length].to_vec(),
    }
}

/// Whether the server closes `stream` (end of file or reset) within `timeout`; what it
/// sends meanwhile is discarded.
pub fn raw_closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut sink = [0; 8192];
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            return false;
        }
        stream
            .set_read_timeout(Some(left))
            .expect("set read timeout");
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}
