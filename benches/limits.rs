//! One rate-limit check (per account, per IP), and the memory of 100 000 idle
//! limiter entries before and after eviction.

use std::net::IpAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tidings::config::Config;
use tidings::limits::Limits;

fn limits_with_room() -> Limits {
    let mut config = Config::default();
    config.limits.tiers.insert("bench".into(), u32::MAX);
    config.limits.anonymous_per_minute = u32::MAX;
    Limits::new(&config)
}

fn checks(c: &mut Criterion) {
    let limits = limits_with_room();
    c.bench_function("publish quota check (one account)", |b| {
        b.iter(|| limits.check_publish("account-1", "bench").unwrap())
    });
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    c.bench_function("anonymous quota check (one IP)", |b| {
        b.iter(|| limits.check_anonymous(ip).unwrap())
    });
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Not a timing: prints the resident memory of 100 000 limiter entries and what
/// eviction gives back.
fn idle_entries(_: &mut Criterion) {
    const ENTRIES: u32 = 100_000;
    let mut config = Config::default();
    config.limits.anonymous_per_minute = 60;
    let limits = Limits::new(&config);
    let before = rss_kib();
    for i in 0..ENTRIES {
        let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
        limits.check_anonymous(ip).unwrap();
    }
    let filled = rss_kib();
    // One request of 60/min is forgotten after two emission intervals.
    std::thread::sleep(Duration::from_millis(2100));
    limits.evict();
    let evicted = rss_kib();
    eprintln!(
        "limiter memory: {} entries tracked, RSS {before} KiB -> {filled} KiB filled \
         (+{} KiB, {:.0} B/entry) -> {evicted} KiB after eviction ({} entries left)",
        ENTRIES,
        filled.saturating_sub(before),
        filled.saturating_sub(before) as f64 * 1024.0 / ENTRIES as f64,
        limits.tracked_keys()
    );
}

criterion_group!(benches, checks, idle_entries);
criterion_main!(benches);
