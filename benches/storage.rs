//! One durable publish through the message writer on a temp SQLite database (a single
//! node: each publish is one line written to the journal, and the writer thread moves
//! them into `messages` 4096 at a time meanwhile): a publish awaited alone, and 64
//! concurrent publishes (criterion reports elements/s; per message = time / 64); and
//! the writer's move of 4096 journaled messages into `messages` in one transaction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::future::join_all;
use tidings::broker::Broker;
use tidings::db::messages::{self, MessageRow};
use tidings::db::topics::{self, TopicRow};
use tidings::model::message::Message;
use tidings::pipeline::writer::Writer;
use tidings::service::accounts::{self, NewUser};

#[path = "support/sample.rs"]
mod sample;

const GROUP: usize = 64;
/// Messages the writer moves in one transaction.
const MOVE: usize = 4096;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Ids are unique in the table, so each publish gets a fresh one.
fn message() -> Message {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    sample::message(format!("bench{n:012}"), 0)
}

fn durable_publish(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir.path().join("bench.db").display().to_string();
    tidings::db::open(&url).expect("database opens");
    // Nobody subscribes: the broker's hand-off is a map lookup that finds no topic.
    let writer = Writer::start(&url, Broker::new(Duration::from_secs(3600)), None).expect("writer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("durable publish (SQLite)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single, awaited alone", |b| {
        b.iter(|| rt.block_on(writer.publish(message())).expect("stored"))
    });
    group.throughput(Throughput::Elements(GROUP as u64));
    group.bench_function(format!("{GROUP} concurrent"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let publishes = (0..GROUP).map(|_| writer.publish(message()));
                for stored in rt.block_on(join_all(publishes)) {
                    stored.expect("stored");
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn moving_the_journal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir.path().join("bench.db").display().to_string();
    let pool = tidings::db::open(&url).expect("database opens");
    let mut conn = pool.get().expect("connection");
    let owner = accounts::create_user(
        &mut conn,
        &NewUser {
            email: "owner@example.com",
            username: "owner",
            password: Some("owner-password"),
            tier: "free",
        },
    )
    .expect("owner stored");
    let topic = TopicRow {
        name: "backups".into(),
        owner_id: owner.id,
        visibility: "public".into(),
        description: None,
        created_at: 0,
    };
    topics::insert(&mut conn, &topic).expect("topic stored");

    let mut seq = 0;
    let mut group = c.benchmark_group("moving the journal (SQLite)");
    group.throughput(Throughput::Elements(MOVE as u64));
    group.bench_function(format!("{MOVE} messages"), |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                let rows: Vec<MessageRow> = (0..MOVE)
                    .map(|_| {
                        seq += 1;
                        MessageRow::from(&sample::message(format!("move{seq:012}"), seq))
                    })
                    .collect();
                let start = Instant::now();
                let moved = messages::move_in(&mut conn, &rows).expect("moved");
                took += start.elapsed();
                assert_eq!(moved, MOVE);
            }
            took
        })
    });
    group.finish();
}

criterion_group!(benches, durable_publish, moving_the_journal);
criterion_main!(benches);
