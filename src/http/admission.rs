//! Which new connections the front serves: open connections are counted per client IP
//! (`limits.connections_per_ip`) and against the process's file limit, below which a
//! reserve is kept so that `/health` and `/metrics` still answer when it is near.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;

/// Files kept free below the limit: the process's own (database, journal, one event
/// queue per worker, pooled connections) and the probes still answered near it.
fn reserve(limit: usize) -> usize {
    (limit / 8).clamp(128, 4096).min(limit / 2)
}

/// Open connections, shared by every worker.
pub struct Admission {
    /// 0: no cap.
    per_ip_cap: u32,
    open: AtomicUsize,
    per_ip: DashMap<IpAddr, u32>,
}

/// What a new connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Serve,
    /// Its IP already holds the most connections it may.
    OverIpCap {
        cap: u32,
    },
    /// Open connections have reached the reserve below the file limit.
    AtFileLimit,
}

/// One open connection, counted until it is dropped.
pub struct Ticket<'a> {
    admission: &'a Admission,
    ip: Option<IpAddr>,
    pub verdict: Verdict,
}

impl Admission {
    pub fn new(per_ip_cap: u32) -> Self {
        Self {
            per_ip_cap,
            open: AtomicUsize::new(0),
            per_ip: DashMap::new(),
        }
    }

    /// Counts a new connection from `ip` (`None`: not counted per IP, as behind a
    /// proxy) and says whether it may be served.
    pub fn enter(&self, ip: Option<IpAddr>) -> Ticket<'_> {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        let ip = ip.filter(|_| self.per_ip_cap > 0);
        let from_ip = ip.map_or(0, |ip| {
            let mut count = self.per_ip.entry(ip).or_insert(0);
            *count += 1;
            *count
        });
        let verdict = if from_ip > self.per_ip_cap {
            Verdict::OverIpCap {
                cap: self.per_ip_cap,
            }
        } else if open > file_limit().map_or(usize::MAX, |l| l - reserve(l)) {
            Verdict::AtFileLimit
        } else {
            Verdict::Serve
        };
        Ticket {
            admission: self,
            ip,
            verdict,
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            self.admission.per_ip.remove_if_mut(&ip, |_, count| {
                *count -= 1;
                *count == 0
            });
        }
    }
}

/// The soft limit on open files, read as each connection arrives (so one changed on
/// the running process, with `prlimit`, counts at once); `None` when unlimited.
fn file_limit() -> Option<usize> {
    let limit = nofile()?;
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// Raises the soft limit on open files to the hard limit, so connections are bounded
/// by what the system allows rather than a default of 1024; returns the limit.
pub fn raise_file_limit() -> Option<usize> {
    if let Some(mut limit) = nofile().filter(|l| l.rlim_cur < l.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit only reads the struct it is given.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
    file_limit()
}

fn nofile() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    ok.then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_connections_per_ip() {
        let admission = Admission::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = admission.enter(Some(a));
        let second = admission.enter(Some(a));
        assert_eq!(first.verdict, Verdict::Serve);
        assert_eq!(second.verdict, Verdict::Serve);
        assert_eq!(
            admission.enter(Some(a)).verdict,
            Verdict::OverIpCap { cap: 2 }
        );
        assert_eq!(admission.enter(Some(b)).verdict, Verdict::Serve);
        drop(first);
        assert_eq!(admission.enter(Some(a)).verdict, Verdict::Serve);
        drop(second);
        assert!(admission.per_ip.is_empty());
        assert_eq!(admission.open.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn no_cap_and_no_ip_are_not_counted_per_ip() {
        let admission = Admission::new(0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let tickets: Vec<_> = (0..5).map(|_| admission.enter(Some(ip))).collect();
        assert!(tickets.iter().all(|t| t.verdict == Verdict::Serve));
        assert!(admission.per_ip.is_empty());
    }

    #[test]
    fn the_reserve_leaves_room_at_any_limit() {
        assert_eq!(reserve(256), 128);
        assert_eq!(reserve(1024), 128);
        assert_eq!(reserve(65536), 4096);
        assert_eq!(reserve(100), 50);
    }
}
