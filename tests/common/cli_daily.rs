//! The command-line client as a long-running process: a `tidings subscribe` whose
//! output is read while it runs, and a relay that keeps one address for a server
//! that comes back on another port after a restart.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A TCP relay on a fixed local port to whatever server it is pointed at; while
/// that server is down, connections are accepted and closed at once.
pub struct Relay {
    addr: String,
    upstream: Arc<Mutex<String>>,
    /// Everything the servers sent back, all connections together.
    down: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    pub fn to(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address").to_string();
        let upstream = Arc::new(Mutex::new(upstream.to_string()));
        let down = Arc::new(Mutex::new(Vec::new()));
        let (target, seen) = (upstream.clone(), down.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let to = target.lock().unwrap().clone();
                if let Ok(server) = TcpStream::connect(to) {
                    splice(client, server, seen.clone());
                }
            }
        });
        Relay {
            addr,
            upstream,
            down,
        }
    }

    /// What the servers have sent back so far, as text.
    pub fn seen(&self) -> String {
        String::from_utf8_lossy(&self.down.lock().unwrap()).into_owned()
    }

    /// Sends new connections to `upstream` from now on.
    pub fn point_to(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_string();
    }

    /// `http://127.0.0.1:PORT` of the relay.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Copies both ways until either side closes, then closes both; what comes back
/// from the server is also added to `down`.
fn splice(client: TcpStream, server: TcpStream, down: Arc<Mutex<Vec<u8>>>) {
    let pairs = [
        (client.try_clone(), server.try_clone(), None),
        (server.try_clone(), client.try_clone(), Some(down)),
    ];
    for (from, to, seen) in pairs {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            return;
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                if let Some(seen) = &seen {
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
}

/// A running `tidings ARGS` whose stdout and stderr are collected as they come.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        Self::spawn(super::cli::command(args, env))
    }

    /// `tidings ARGS` on a terminal of its own (util-linux `script`), typed to with
    /// [`Running::type_line`].
    pub fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Running {
        let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_tidings"))
            .chain(args.iter().copied())
            .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
            .collect();
        let mut command = Command::new("script");
        command.args(["-qec", &quoted.join(" "), "/dev/null"]);
        super::cli::isolate(&mut command, env);
        command.stdin(Stdio::piped());
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tidings");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Writes `text` and a newline to its standard input.
    pub fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("a piped stdin");
        writeln!(stdin, "{text}").expect("type to tidings");
    }

    /// The `id` of each JSON line printed so far.
    pub fn ids(&self) -> Vec<String> {
        self.stdout()
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line).expect("a JSON line");
                value["id"].as_str().expect("an id").to_string()
            })
            .collect()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<bool> {
        let status = self.child.try_wait().expect("wait for tidings");
        status.map(|status| status.success())
    }
}

/// What `from` gives, gathered by a thread of its own as it comes.
fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let gathered = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            let piece = String::from_utf8_lossy(&buf[..n]);
            gathered.lock().unwrap().push_str(&piece);
        }
    });
    text
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
