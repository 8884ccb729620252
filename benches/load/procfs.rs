//! CPU time and resident memory of a process (and its children: nginx's workers)
//! from `/proc`, and the generator's own file limit.

use std::fs;

/// The process and its direct children.
fn tree(pid: u32) -> Vec<u32> {
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    std::iter::once(pid)
        .chain(children.split_whitespace().filter_map(|c| c.parse().ok()))
        .collect()
}

/// User plus system time in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn cpu_ticks_tree(pid: u32) -> u64 {
    tree(pid).into_iter().filter_map(cpu_ticks).sum()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn rss_kib_tree(pid: u32) -> u64 {
    tree(pid).into_iter().filter_map(rss_kib).sum()
}

/// Linux's USER_HZ, which `/proc/<pid>/stat` counts in; 100 on every common build.
pub fn ticks_per_second() -> f64 {
    100.0
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> u64 {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}
