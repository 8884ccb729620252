//! HTTP workers: one per core by default, each pinned to a core of its own; work they
//! hand off (database reads, key generation) runs on threads free to use every core.

mod common;

use common::TestServer;

/// Each thread of `pid`: its name and the cores it may run on (`Cpus_allowed_list`).
fn threads(pid: u32) -> Vec<(String, String)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list threads");
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let status = std::fs::read_to_string(path.join("status")).ok()?;
            Some((name.trim().to_string(), allowed_cores(&status)))
        })
        .collect()
}

fn allowed_cores(status: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string()
}

fn own_cores() -> String {
    allowed_cores(&std::fs::read_to_string("/proc/self/status").expect("read status"))
}

fn is_worker(name: &str) -> bool {
    name.starts_with("actix-rt|system")
}

/// Publishes, then reads the history back, so that the blocking pool has run work.
async fn exercise(server: &TestServer) {
    let topic = common::unique_topic("workers");
    server.publish(&topic, "one").await;
    let messages = server.poll(&topic, "since=all").await;
    assert_eq!(common::texts(&messages), ["one"]);
}

#[actix_rt::test]
async fn each_worker_runs_on_a_core_of_its_own() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let server = TestServer::broker(&format!("workers = {cores}")).await;
    exercise(&server).await;
    let threads = threads(server.pid());
    let mut pinned: Vec<&str> = threads
        .iter()
        .filter(|(name, _)| is_worker(name))
        .map(|(_, cores)| cores.as_str())
        .collect();
    assert_eq!(pinned.len(), cores, "{threads:?}");
    assert!(
        pinned.iter().all(|c| c.parse::<usize>().is_ok()),
        "each worker on one core: {threads:?}"
    );
    pinned.sort_unstable();
    pinned.dedup();
    assert_eq!(
        pinned.len(),
        cores,
        "no two workers share a core: {threads:?}"
    );
    let all = own_cores();
    for (name, cores) in threads.iter().filter(|(name, _)| !is_worker(name)) {
        assert_eq!(cores, &all, "{name} may use every core: {threads:?}");
    }
}

#[actix_rt::test]
async fn workers_stay_unpinned_when_asked() {
    let server = TestServer::broker("pin_workers = false").await;
    exercise(&server).await;
    let all = own_cores();
    let threads = threads(server.pid());
    assert!(threads.iter().any(|(name, _)| is_worker(name)));
    for (name, cores) in &threads {
        assert_eq!(cores, &all, "{name}: {threads:?}");
    }
}

#[actix_rt::test]
async fn more_workers_than_cores_are_left_unpinned() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let server = TestServer::broker(&format!("workers = {}", cores + 1)).await;
    exercise(&server).await;
    let all = own_cores();
    let threads = threads(server.pid());
    let workers = threads.iter().filter(|(name, _)| is_worker(name)).count();
    assert_eq!(workers, cores + 1, "{threads:?}");
    for (name, cores) in &threads {
        assert_eq!(cores, &all, "{name}: {threads:?}");
    }
}
