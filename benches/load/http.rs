//! Just enough HTTP/1.1 for a load generator: URL templates limited to loopback,
//! connecting from a chosen 127.0.0.x source, reading a response head, and reading
//! bodies with or without chunked transfer coding.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A URL with `{topic}` in it, on a loopback address.
#[derive(Clone, Debug)]
pub struct Template {
    pub addr: SocketAddr,
    /// The `Host` header: what the URL names.
    pub host: String,
    prefix: String,
    suffix: String,
}

impl Template {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = ["http://", "ws://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| format!("{url}: only http:// and ws:// URLs"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr: SocketAddr = host
            .parse()
            .map_err(|_| format!("{url}: the host must be IP:PORT"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{url}: only loopback (127.0.0.0/8) targets"));
        }
        let path = if path.is_empty() { "/" } else { path };
        let (prefix, suffix) = path.split_once("{topic}").unwrap_or((path, ""));
        Ok(Self {
            addr,
            host: host.to_string(),
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        })
    }

    pub fn path(&self, topic: &str) -> String {
        format!("{}{topic}{}", self.prefix, self.suffix)
    }
}

/// Connects to `addr` from `source`, so that many sources give many more ports.
pub async fn connect(addr: SocketAddr, source: Ipv4Addr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What the generator needs of a response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub content_length: Option<usize>,
    pub close: bool,
}

/// A connection and the bytes read from it but not yet used.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(2048),
        }
    }

    /// Reads more bytes into `buf`; the end of the stream is an error.
    pub async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads and removes a response head from the front of `buf`.
    pub async fn head(&mut self) -> io::Result<Head> {
        let end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(io::Error::other("response head too long"));
            }
            self.fill().await?;
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        self.buf.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other("bad status line"))?;
        let mut head = Head {
            status,
            chunked: false,
            content_length: None,
            close: false,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim() {
                "transfer-encoding" => head.chunked = value.contains("chunked"),
                "content-length" => head.content_length = value.parse().ok(),
                "connection" => head.close = value.contains("close"),
                _ => {}
            }
        }
        Ok(head)
    }

    /// Reads and drops the body of a response that has an end.
    pub async fn skip_body(&mut self, head: &Head) -> io::Result<()> {
        if head.chunked {
            let mut decoder = Decoder::new(true);
            let mut sink = Vec::new();
            loop {
                decoder.decode(&mut self.buf, &mut sink);
                sink.clear();
                if decoder.done() {
                    return Ok(());
                }
                self.fill().await?;
            }
        }
        let len = match head.content_length {
            Some(len) => len,
            None if head.status == 204 || head.status == 304 => 0,
            None => return Err(io::Error::other("response body without a length")),
        };
        while self.buf.len() < len {
            self.fill().await?;
        }
        self.buf.drain(..len);
        Ok(())
    }
}

#[derive(Debug, PartialEq)]
enum State {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
    Done,
    Identity,
}

/// Takes a body's bytes out of the read buffer, undoing chunked coding.
pub struct Decoder {
    state: State,
}

impl Decoder {
    pub fn new(chunked: bool) -> Self {
        Self {
            state: if chunked {
                State::Size
            } else {
                State::Identity
            },
        }
    }

    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Moves what can be decoded from `input` to `out`; keeps an incomplete rest.
    pub fn decode(&mut self, input: &mut Vec<u8>, out: &mut Vec<u8>) {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                State::Identity => {
                    out.extend_from_slice(rest);
                    at = input.len();
                    break;
                }
                State::Done => break,
                State::Size => {
                    let Some(eol) = find(rest, b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&rest[..eol]);
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).unwrap_or(0);
                    at += eol + 2;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = left.min(rest.len());
                    out.extend_from_slice(&rest[..take]);
                    at += take;
                    self.state = if take == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take)
                    };
                }
                State::Trailer => {
                    let Some(eol) = find(rest, b"\r\n") else {
                        break;
                    };
                    at += eol + 2;
                    if eol == 0 {
                        self.state = State::Done;
                    }
                }
                State::DataEnd => {
                    if rest.len() < 2 {
                        break;
                    }
                    at += 2;
                    self.state = State::Size;
                }
            }
        }
        input.drain(..at);
    }
}
