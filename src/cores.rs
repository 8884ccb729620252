//! Keeping each HTTP worker on a core of its own.
//!
//! Workers wake one another all the time (a publish on one worker delivers to a
//! subscriber on another), and the kernel tends to place a woken thread on the waker's
//! core: left alone, both workers often end up sharing one core, each waiting
//! milliseconds for the other, while the second core idles. Pinned, they cannot.
//!
//! Threads a worker starts inherit its core; work handed off the workers (blocking
//! queries, key generation) runs through [`block`], whose threads take every core
//! back.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Every core this process may use, once workers are pinned.
static ALL: OnceLock<Vec<usize>> = OnceLock::new();

/// The cores the workers are pinned to, handed out in turn as workers start.
#[derive(Debug)]
pub struct Cores {
    cores: Vec<usize>,
    next: AtomicUsize,
}

impl Cores {
    /// The cores for `workers` workers, or `None` when there are too few for one each
    /// (workers sharing a core they cannot leave would wait on each other for good).
    pub fn for_workers(workers: usize) -> Option<Self> {
        let cores = match allowed() {
            Ok(cores) => cores,
            Err(error) => {
                tracing::debug!(%error, "cannot read the cores this process may use");
                return None;
            }
        };
        if workers > cores.len() {
            tracing::debug!(
                workers,
                cores = cores.len(),
                "more workers than cores: workers are not pinned"
            );
            return None;
        }
        let _ = ALL.set(cores.clone());
        Some(Self {
            cores,
            next: AtomicUsize::new(0),
        })
    }

    /// Pins the calling thread to the next core (a restarted worker takes the next one
    /// in turn).
    pub fn pin_this_thread(&self) {
        let core = self.cores[self.next.fetch_add(1, Ordering::Relaxed) % self.cores.len()];
        if let Err(error) = set_affinity(&[core]) {
            tracing::debug!(%error, core, "cannot pin a worker");
        }
    }
}

/// Runs blocking `work` on the blocking pool, on a thread free to use every core.
pub async fn block<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, actix_web::error::BlockingError> {
    actix_web::web::block(unpinned(work)).await
}

/// `work`, run on a thread that may use every core again (once per thread).
fn unpinned<R>(work: impl FnOnce() -> R) -> impl FnOnce() -> R {
    thread_local!(static FREED: Cell<bool> = const { Cell::new(false) });
    move || {
        if let Some(all) = ALL.get() {
            if !FREED.replace(true) {
                if let Err(error) = set_affinity(all) {
                    tracing::debug!(%error, "cannot give a thread every core back");
                }
            }
        }
        work()
    }
}

/// The cores this process may run on, in order.
fn allowed() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the kernel fills in at most its size.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        set
    };
    let cores = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `core` is below CPU_SETSIZE, the size of the set.
        .filter(|&core| unsafe { libc::CPU_ISSET(core, &set) })
        .collect();
    Ok(cores)
}

/// Lets the calling thread run on `cores` only.
fn set_affinity(cores: &[usize]) -> io::Result<()> {
    // SAFETY: the set is built in place and passed with its own size; 0 is this thread;
    // every core came from `allowed`, below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &core in cores {
            libc::CPU_SET(core, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_runs_on_its_core_only() {
        let cores = allowed().unwrap();
        assert!(!cores.is_empty());
        let pinning = Cores::for_workers(1).unwrap();
        std::thread::spawn(move || {
            pinning.pin_this_thread();
            assert_eq!(allowed().unwrap(), vec![cores[0]]);
            // Work handed off takes every core back.
            let spread = unpinned(|| allowed().unwrap());
            assert_eq!(spread(), cores);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn more_workers_than_cores_are_not_pinned() {
        let cores = allowed().unwrap().len();
        assert!(Cores::for_workers(cores).is_some());
        assert!(Cores::for_workers(cores + 1).is_none());
    }
}
