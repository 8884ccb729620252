//! Encoding one message for each transport, and fanning one message out to 1, 100
//! and 10 000 in-process subscribers (topic actor to session mailboxes).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tidings::auth::permissions::Grant;
use tidings::broker::message::{Envelope, Message, Transport};
use tidings::broker::topic::{Deliver, Publish, Subscribe};
use tidings::broker::{Broker, SessionId};

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

/// Counts deliveries and tells the bench when the expected number arrived.
struct Sink {
    left: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<tokio::sync::Notify>,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Deliver> for Sink {
    type Result = ();
    fn handle(&mut self, _: Deliver, _: &mut Context<Self>) {
        use std::sync::atomic::Ordering;
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

fn fanout(c: &mut Criterion) {
    let system = actix_rt::System::new();
    let mut group = c.benchmark_group("fan-out one message");
    group.measurement_time(Duration::from_secs(5));
    for subscribers in [1usize, 100, 10_000] {
        let left = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let done = Arc::new(tokio::sync::Notify::new());
        let topic = system.block_on(async {
            let broker = Broker::new(Duration::from_secs(3600));
            let topic = broker.topic("backups");
            for _ in 0..subscribers {
                let sink = Sink {
                    left: left.clone(),
                    done: done.clone(),
                }
                .start();
                topic
                    .send(Subscribe {
                        id: SessionId::next(),
                        recipient: sink.recipient(),
                        grant: Grant::Public {
                            user: None,
                            key: None,
                        },
                    })
                    .await
                    .unwrap();
            }
            topic
        });
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &n| {
                b.iter(|| {
                    system.block_on(async {
                        left.store(n, std::sync::atomic::Ordering::Release);
                        topic.do_send(Publish(Arc::new(Envelope::new(message(1)))));
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
