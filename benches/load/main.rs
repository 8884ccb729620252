//! The load generator: drives a running broker over loopback as real clients would
//! and measures end-to-end latency, loss, throughput and the server's CPU and memory.
//!
//! `cargo bench --bench load -- <scenario> [options]`, or `-- report` to turn a
//! results file into the table and chart of `docs/benchmarks.md`. Scenarios and
//! options: `--help`. Without the `--bench` argument that `cargo bench` passes (as
//! under `cargo test --benches`) it does nothing.

mod http;
mod procfs;
mod report;
mod subscriber;
#[allow(dead_code)]
#[path = "../support/ws.rs"]
mod ws;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use http::{connect, Conn, Template};
use subscriber::{histogram, Subscriber, Tally, Transport};

const HELP: &str = "\
usage: cargo bench --bench load -- <scenario> [options]
       cargo bench --bench load -- report --in FILE [--markdown FILE] [--png FILE]

scenarios (defaults; every option below overrides them):
  fanout-sse    1 000 SSE subscribers, 1 topic, 200 msg/s
  fanout-ws     the same over WebSocket
  fanout-wide   5 000 SSE subscribers, 1 topic, 50 msg/s
  heavy         2 000 SSE subscribers, 200 msg/s, 15 s
  publish       8 publishers flat out over 100 topics, one subscriber each
  idle          10 000 idle SSE connections (from 127.0.0.1–8); server RSS per connection
  connections   as many SSE connections as allowed (100 000 asked), from 8 source
                addresses; one message per topic then counts who is still there

options:
  --target NAME          label in the results (default tidings)
  --publish-url URL      default http://127.0.0.1:8080/{topic}
  --sse-url URL          default http://127.0.0.1:8080/{topic}/sse
  --ws-url URL           default ws://127.0.0.1:8080/{topic}/ws
  --header 'K: V'        sent with every publish (repeatable)
  --sub-header 'K: V'    sent with every subscribe (repeatable)
  --topic-prefix P       topics are P0, P1, ... (default t)
  --subscribers N  --topics T  --rate MSG_PER_S (0: flat out)  --publishers P
  --duration S  --transport sse|ws  --sources K (127.0.0.1..K, default 8: rounds in
                         a row leave closed ports waiting on each address)
  --connect-concurrency C (default 256)  --connect-timeout S (default 60)
  --settle S (default 1)  --drain S (default 5)  --threads W (default 2)
  --server-pid PID       server whose CPU and RSS to read (its children too)
  --round R              label in the results  --out FILE (append a TSV line)
";

/// Microseconds since the generator started: the clock of every send time.
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// Subscribers, then publishers for a while.
    Stream,
    /// Connections held with nothing published; server memory per connection.
    Idle,
    /// As many connections as allowed, then one message per topic.
    Connections,
}

#[derive(Clone, Debug)]
struct Options {
    scenario: String,
    kind: Kind,
    target: String,
    publish_url: String,
    sse_url: String,
    ws_url: String,
    headers: Vec<String>,
    sub_headers: Vec<String>,
    topic_prefix: String,
    subscribers: usize,
    topics: usize,
    rate: f64,
    publishers: usize,
    duration: f64,
    transport: Transport,
    sources: u8,
    connect_concurrency: usize,
    connect_timeout: f64,
    settle: f64,
    drain: f64,
    threads: usize,
    server_pid: Option<u32>,
    round: String,
    out: Option<String>,
}

impl Options {
    fn preset(scenario: &str) -> Result<Self, String> {
        let mut o = Options {
            scenario: scenario.to_string(),
            kind: Kind::Stream,
            target: "tidings".into(),
            publish_url: "http://127.0.0.1:8080/{topic}".into(),
            sse_url: "http://127.0.0.1:8080/{topic}/sse".into(),
            ws_url: "ws://127.0.0.1:8080/{topic}/ws".into(),
            headers: Vec::new(),
            sub_headers: Vec::new(),
            topic_prefix: "t".into(),
            subscribers: 1000,
            topics: 1,
            rate: 200.0,
            // Each waits for its answer: enough of them that a slow answer does not
            // lower the rate.
            publishers: 16,
            duration: 10.0,
            transport: Transport::Sse,
            sources: 8,
            connect_concurrency: 256,
            connect_timeout: 60.0,
            settle: 1.0,
            drain: 5.0,
            threads: 2,
            server_pid: None,
            round: "1".into(),
            out: None,
        };
        match scenario {
            "fanout-sse" => {}
            "fanout-ws" => o.transport = Transport::Ws,
            "fanout-wide" => (o.subscribers, o.rate, o.publishers) = (5000, 50.0, 8),
            "heavy" => (o.subscribers, o.duration) = (2000, 15.0),
            "publish" => {
                (o.publishers, o.rate, o.topics, o.subscribers) = (8, 0.0, 100, 100);
            }
            "idle" => {
                (o.kind, o.subscribers, o.duration) = (Kind::Idle, 10_000, 5.0);
            }
            "connections" => {
                (o.kind, o.subscribers, o.topics) = (Kind::Connections, 100_000, 100);
                o.duration = 5.0;
            }
            other => return Err(format!("unknown scenario {other}\n\n{HELP}")),
        }
        Ok(o)
    }

    fn parse(args: &[String]) -> Result<Self, String> {
        let scenario = args.first().ok_or(HELP)?;
        let mut o = Self::preset(scenario)?;
        let mut rest = args[1..].iter();
        while let Some(flag) = rest.next() {
            let value = rest
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .clone();
            let number = |v: &str| -> Result<f64, String> {
                v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
            };
            match flag.as_str() {
                "--target" => o.target = value,
                "--publish-url" => o.publish_url = value,
                "--sse-url" => o.sse_url = value,
                "--ws-url" => o.ws_url = value,
                "--header" => o.headers.push(value),
                "--sub-header" => o.sub_headers.push(value),
                "--topic-prefix" => o.topic_prefix = value,
                "--subscribers" => o.subscribers = number(&value)? as usize,
                "--topics" => o.topics = (number(&value)? as usize).max(1),
                "--rate" => o.rate = number(&value)?,
                "--publishers" => o.publishers = (number(&value)? as usize).max(1),
                "--duration" => o.duration = number(&value)?,
                "--transport" => {
                    o.transport = match value.as_str() {
                        "sse" => Transport::Sse,
                        "ws" => Transport::Ws,
                        _ => return Err(format!("--transport: sse or ws, not {value}")),
                    }
                }
                "--sources" => o.sources = (number(&value)? as u8).clamp(1, 250),
                "--connect-concurrency" => o.connect_concurrency = number(&value)? as usize,
                "--connect-timeout" => o.connect_timeout = number(&value)?,
                "--settle" => o.settle = number(&value)?,
                "--drain" => o.drain = number(&value)?,
                "--threads" => o.threads = (number(&value)? as usize).max(1),
                "--server-pid" => o.server_pid = Some(number(&value)? as u32),
                "--round" => o.round = value,
                "--out" => o.out = Some(value),
                _ => return Err(format!("unknown option {flag}\n\n{HELP}")),
            }
        }
        Ok(o)
    }

    fn topic(&self, i: usize) -> String {
        format!("{}{i}", self.topic_prefix)
    }

    fn source(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 1 + (i % self.sources as usize) as u8)
    }
}

/// Header lines, each ending in CRLF.
fn header_block(headers: &[String]) -> Arc<String> {
    Arc::new(headers.iter().map(|h| format!("{h}\r\n")).collect())
}

/// What the publishers add to.
struct Published {
    acked: AtomicU64,
    errors: AtomicU64,
    /// Deliveries the acknowledged publishes owe: subscribers of their topic.
    expected: AtomicU64,
    acks: Mutex<Histogram<u64>>,
}

struct Publisher {
    index: usize,
    url: Arc<Template>,
    headers: Arc<String>,
    source: Ipv4Addr,
}

impl Publisher {
    /// Publishes until `deadline` or `count` messages, at `period` apart if given.
    async fn run(
        self,
        o: Arc<Options>,
        tally: Arc<Tally>,
        published: Arc<Published>,
        deadline: Instant,
        period: Option<Duration>,
        count: usize,
    ) {
        let mut conn: Option<Conn> = None;
        let mut ticks = period.map(|p| {
            let mut t = tokio::time::interval(p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            t
        });
        for k in 0..count {
            if let Some(ticks) = &mut ticks {
                ticks.tick().await;
            }
            if Instant::now() >= deadline {
                break;
            }
            let topic = (self.index + k * o.publishers) % o.topics;
            let body = format!(
                "ts:{}: load test message {k} from publisher {}",
                now_us(),
                self.index
            );
            let request = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\n{}\r\n{body}",
                self.url.path(&o.topic(topic)),
                self.url.host,
                body.len(),
                self.headers,
            );
            let started = Instant::now();
            let sent = tokio::time::timeout(
                Duration::from_secs(10),
                self.send(&mut conn, request.as_bytes()),
            )
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("publish timed out")));
            match sent {
                Ok(status) if (200..300).contains(&status) => {
                    let owed = tally.per_topic[topic].load(Ordering::Relaxed);
                    published.expected.fetch_add(owed, Ordering::Relaxed);
                    published.acked.fetch_add(1, Ordering::Relaxed);
                    let micros = started.elapsed().as_micros() as u64;
                    published
                        .acks
                        .lock()
                        .expect("histogram lock")
                        .saturating_record(micros.max(1));
                }
                Ok(status) => {
                    published.errors.fetch_add(1, Ordering::Relaxed);
                    tally.note_error(format!("publish: status {status}"));
                }
                Err(e) => {
                    conn = None;
                    published.errors.fetch_add(1, Ordering::Relaxed);
                    tally.note_error(format!("publish: {e}"));
                }
            }
        }
    }

    /// One request on the kept-alive connection, opening a new one when needed.
    async fn send(&self, conn: &mut Option<Conn>, request: &[u8]) -> std::io::Result<u16> {
        if conn.is_none() {
            *conn = Some(Conn::new(connect(self.url.addr, self.source).await?));
        }
        let c = conn.as_mut().expect("connection just opened");
        c.send(request).await?;
        let head = c.head().await?;
        c.skip_body(&head).await?;
        if head.close {
            *conn = None;
        }
        Ok(head.status)
    }
}

/// CPU and memory readings at one moment.
struct Snapshot {
    at: Instant,
    server_ticks: u64,
    own_ticks: u64,
}

fn snapshot(o: &Options) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        server_ticks: o.server_pid.map(procfs::cpu_ticks_tree).unwrap_or(0),
        own_ticks: procfs::cpu_ticks(std::process::id()).unwrap_or(0),
    }
}

fn run(o: Options) -> Result<(), String> {
    let o = Arc::new(o);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let asked = o.subscribers;
    let fd_room = procfs::open_files_limit().saturating_sub(64 + o.publishers as u64) as usize;
    let subscribers = asked.min(fd_room);
    if subscribers < asked {
        eprintln!("generator: {asked} connections asked, file limit allows {subscribers}");
    }
    let url = Arc::new(Template::parse(match o.transport {
        Transport::Sse => &o.sse_url,
        Transport::Ws => &o.ws_url,
    })?);
    let publish_url = Arc::new(Template::parse(&o.publish_url)?);
    let tally = Arc::new(Tally::new(o.topics));
    let rss_before = o.server_pid.map(procfs::rss_kib_tree).unwrap_or(0);

    // Connect everyone, a bounded number at a time.
    let connecting = Arc::new(Semaphore::new(o.connect_concurrency.max(1)));
    let sub_headers = header_block(&o.sub_headers);
    let started = Instant::now();
    rt.block_on(async {
        for index in 0..subscribers {
            let subscriber = Subscriber {
                transport: o.transport,
                url: url.clone(),
                topic: index % o.topics,
                topic_name: o.topic(index % o.topics),
                source: o.source(index),
                headers: sub_headers.clone(),
                index,
            };
            tokio::spawn(subscriber.run(tally.clone(), connecting.clone()));
        }
        let limit = started + Duration::from_secs_f64(o.connect_timeout);
        while Instant::now() < limit {
            let done =
                tally.connected.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed);
            if done >= subscribers as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs_f64(o.settle)).await;
    });
    let connected = tally.connected.load(Ordering::Relaxed);
    eprintln!(
        "{} {} round {}: {connected}/{subscribers} connected in {:.1} s ({} failed)",
        o.scenario,
        o.target,
        o.round,
        started.elapsed().as_secs_f64(),
        tally.failed.load(Ordering::Relaxed)
    );

    let published = Arc::new(Published {
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        acks: Mutex::new(histogram()),
    });
    let before = snapshot(&o);
    let headers = header_block(&o.headers);
    let (publishers, count, period) = match o.kind {
        Kind::Stream => {
            let period =
                (o.rate > 0.0).then(|| Duration::from_secs_f64(o.publishers as f64 / o.rate));
            (o.publishers, usize::MAX, period)
        }
        Kind::Idle => (0, 0, None),
        // One message per topic, one publisher: a roll call.
        Kind::Connections => (1, o.topics, None),
    };
    let window = Duration::from_secs_f64(o.duration);
    rt.block_on(async {
        let deadline = Instant::now() + window;
        let mut tasks = Vec::new();
        for index in 0..publishers {
            let publisher = Publisher {
                index,
                url: publish_url.clone(),
                headers: headers.clone(),
                source: o.source(index),
            };
            tasks.push(tokio::spawn(publisher.run(
                o.clone(),
                tally.clone(),
                published.clone(),
                deadline,
                period,
                count,
            )));
        }
        for task in tasks {
            let _ = task.await;
        }
        if o.kind != Kind::Stream {
            tokio::time::sleep_until(deadline.into()).await;
        }
        let drained = Instant::now() + Duration::from_secs_f64(o.drain);
        while Instant::now() < drained
            && tally.received.load(Ordering::Relaxed) < published.expected.load(Ordering::Relaxed)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let after = snapshot(&o);
    let rss_after = o.server_pid.map(procfs::rss_kib_tree).unwrap_or(0);
    let tick = procfs::ticks_per_second();
    let wall = after.at.duration_since(before.at).as_secs_f64();
    let server_cpu = (after.server_ticks - before.server_ticks) as f64 / tick;
    let own_cpu_pct = (after.own_ticks - before.own_ticks) as f64 / tick / wall * 100.0;
    let latencies = tally.latencies();
    let acks = published.acks.lock().expect("histogram lock").clone();
    let received = tally.received.load(Ordering::Relaxed);
    let expected = published.expected.load(Ordering::Relaxed);
    let acked = published.acked.load(Ordering::Relaxed);
    let seconds = window.as_secs_f64();
    let result = report::Row::from_pairs(vec![
        ("scenario", o.scenario.clone()),
        ("target", o.target.clone()),
        ("round", o.round.clone()),
        ("subscribers", subscribers.to_string()),
        ("connected", connected.to_string()),
        ("dropped", tally.dropped.load(Ordering::Relaxed).to_string()),
        ("published", acked.to_string()),
        (
            "pub_errors",
            published.errors.load(Ordering::Relaxed).to_string(),
        ),
        ("pub_per_s", format!("{:.1}", acked as f64 / seconds)),
        ("expected", expected.to_string()),
        ("received", received.to_string()),
        (
            "loss_pct",
            format!(
                "{:.3}",
                100.0 * expected.saturating_sub(received) as f64 / expected.max(1) as f64
            ),
        ),
        (
            "deliveries_per_s",
            format!("{:.0}", received as f64 / seconds),
        ),
        ("p50_us", latencies.value_at_quantile(0.5).to_string()),
        ("p99_us", latencies.value_at_quantile(0.99).to_string()),
        ("max_us", latencies.max().to_string()),
        ("ack_p50_us", acks.value_at_quantile(0.5).to_string()),
        ("ack_p99_us", acks.value_at_quantile(0.99).to_string()),
        ("server_cpu_s", format!("{server_cpu:.2}")),
        (
            "cpu_s_per_m",
            format!("{:.2}", server_cpu / (received.max(1) as f64) * 1e6),
        ),
        ("server_rss_kib", rss_after.to_string()),
        (
            "rss_per_conn_kib",
            format!(
                "{:.2}",
                rss_after.saturating_sub(rss_before) as f64 / connected.max(1) as f64
            ),
        ),
        ("gen_cpu_pct", format!("{own_cpu_pct:.0}")),
    ]);
    println!("{}", result.pretty());
    if let Some(error) = tally.first_error.lock().expect("error lock").as_ref() {
        eprintln!("first error: {error}");
    }
    if let Some(out) = &o.out {
        result.append_to(out).map_err(|e| format!("{out}: {e}"))?;
    }
    // Closes every connection; nothing waits for the server to notice.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let Some(bench) = args.iter().position(|a| a == "--bench") else {
        return;
    };
    args.remove(bench);
    now_us();
    let outcome = match args.first().map(String::as_str) {
        None | Some("--help" | "-h" | "help") => {
            print!("{HELP}");
            Ok(())
        }
        Some("report") => report::main(&args[1..]),
        Some(_) => Options::parse(&args).and_then(run),
    };
    if let Err(e) = outcome {
        eprintln!("{e}");
        std::process::exit(2);
    }
}
