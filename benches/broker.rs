//! Encoding one message for each transport, and fanning one message out to 1, 100
//! and 10 000 in-process subscribers (the topic actor writes straight into each
//! subscriber's feed; one task per subscriber drains it, as a connection would).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tidings::auth::permissions::Grant;
use tidings::broker::feed::Feed;
use tidings::broker::topic::{Close, GoLive, Subscribe};
use tidings::broker::{Broker, SessionId};
use tidings::model::message::{Envelope, Message, Transport};
use tidings::model::since::Filter;

#[path = "support/sample.rs"]
mod sample;

fn message(seq: i64) -> Message {
    sample::message("AbCdEf123456".into(), seq)
}

fn encoding(c: &mut Criterion) {
    for transport in [Transport::Sse, Transport::Json, Transport::Raw] {
        c.bench_function(
            &format!("encode message + {} frame", transport.name()),
            |b| b.iter(|| Envelope::new(message(1)).frame(transport)),
        );
    }
}

/// Stands for a session: takes the final event if there is one.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Close> for Sink {
    type Result = ();
    fn handle(&mut self, _: Close, _: &mut Context<Self>) {}
}

fn fanout(c: &mut Criterion) {
    let system = actix_rt::System::new();
    let mut group = c.benchmark_group("fan-out one message");
    group.measurement_time(Duration::from_secs(5));
    for subscribers in [1usize, 100, 10_000] {
        let left = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(tokio::sync::Notify::new());
        let broker = Broker::new(Duration::from_secs(3600));
        system.block_on(async {
            let topic = broker.topic("backups");
            let session = Sink.start().recipient();
            for _ in 0..subscribers {
                // Each subscriber's connection: a task that drains its feed.
                let (out, mut rx) = tokio::sync::mpsc::channel(1024);
                let (left, done) = (left.clone(), done.clone());
                actix_rt::spawn(async move {
                    while rx.recv().await.is_some() {
                        if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            done.notify_one();
                        }
                    }
                });
                let id = SessionId::next();
                let feed = Feed::new(out, Transport::Sse, Filter::default());
                let grant = Grant::Public {
                    user: None,
                    key: None,
                };
                let session = session.clone();
                topic
                    .send(Subscribe {
                        id,
                        session,
                        feed,
                        grant,
                    })
                    .await
                    .unwrap();
                topic
                    .send(GoLive {
                        id,
                        replayed_up_to: 0,
                    })
                    .await
                    .unwrap();
            }
        });
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &n| {
                b.iter(|| {
                    system.block_on(async {
                        left.store(n, Ordering::Release);
                        broker.deliver(Arc::new(Envelope::new(message(1))));
                        done.notified().await;
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, encoding, fanout);
criterion_main!(benches);
