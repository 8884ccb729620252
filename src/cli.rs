//! The `tidings` command line.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, Overrides};
use crate::service::backup;
use crate::service::users::NewAccount;
use crate::service::Store;

#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version,
    about = "Self-hosted realtime notification broker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Common),
    /// Publish one message to a running server.
    Publish {
        #[command(flatten)]
        remote: Remote,
        topic: String,
        /// The message; `-` reads it from standard input.
        message: String,
        #[arg(long)]
        title: Option<String>,
        /// 1-5 or min, low, default, high, max/urgent.
        #[arg(long)]
        priority: Option<String>,
        /// Comma-separated.
        #[arg(long)]
        tags: Option<String>,
    },
    /// Print the messages of one or more (comma-separated) topics as JSON lines; the
    /// stream is reopened, from after the last message printed, when it drops.
    Subscribe {
        #[command(flatten)]
        remote: Remote,
        topics: String,
        /// Replay from: all, a duration (10m), a unix time or a message id.
        #[arg(long)]
        since: Option<String>,
        /// Print the stored messages and exit.
        #[arg(long)]
        poll: bool,
        /// Give up after this many failed attempts in a row to (re)open the stream.
        #[arg(long, default_value_t = 20)]
        max_retries: u32,
    },
    /// Copy a live SQLite database, messages in its journal included, into FILE.
    Backup {
        #[command(flatten)]
        common: Common,
        file: PathBuf,
    },
    /// Put a backup made by `tidings backup` in place of the SQLite database (with the
    /// server stopped).
    Restore {
        #[command(flatten)]
        common: Common,
        file: PathBuf,
    },
    /// Manage accounts (works while the server runs, on the same database).
    User {
        #[command(flatten)]
        database: Database,
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account (with its first API key, printed once); the password is
    /// asked for, or read as one line from standard input.
    Add {
        /// The email to log in with.
        #[arg(long)]
        email: String,
        /// The public name.
        #[arg(long)]
        username: String,
        /// Tier name from the configuration (default: limits.default_tier).
        #[arg(long)]
        tier: Option<String>,
    },
    /// List accounts.
    List,
    /// Set an account's tier.
    Tier { email: String, tier: String },
    /// Delete an account with its topics, keys and tokens.
    Delete { email: String },
}

/// How `publish` and `subscribe` reach a server: each flag, else its environment
/// variable, else the client config file.
#[derive(Debug, Args)]
pub struct Remote {
    /// Server base URL [default: http://127.0.0.1:8080].
    #[arg(long, env = "TIDINGSCLIENT_SERVER")]
    pub server: Option<String>,
    /// An API key (`noti_…`).
    #[arg(long, env = "TIDINGSCLIENT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A topic token (`tk_…`) or an access JWT.
    #[arg(long, env = "TIDINGSCLIENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Client config file with `server`, `api_key`, `token` [default:
    /// ~/.config/tidings/client.toml].
    #[arg(long, env = "TIDINGSCLIENT_CONFIG")]
    pub client_config: Option<PathBuf>,
}

impl Remote {
    fn target(self) -> Result<crate::client::Target, String> {
        crate::client::Given {
            server: self.server,
            api_key: self.api_key,
            token: self.token,
            config: self.client_config,
        }
        .target()
    }
}

/// Options every server-side command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// TOML configuration file.
    #[arg(long, env = "TIDINGS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// `sqlite://PATH`, a file path (default sqlite://tidings.db) or `postgres://…`.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// `redis://HOST:PORT`: run as one node of a cluster sharing the database.
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
    /// Log lines as `text` (default) or `json`, one object per line.
    #[arg(long, global = true)]
    pub log_format: Option<String>,
}

/// Options of the commands that work on the database alone (no listener, no cluster).
#[derive(Debug, Args)]
pub struct Database {
    /// TOML configuration file.
    #[arg(long, env = "TIDINGS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// `sqlite://PATH`, a file path (default sqlite://tidings.db) or `postgres://…`.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

impl Database {
    pub fn load(&self) -> Result<Config, String> {
        Common {
            config: self.config.clone(),
            listen: None,
            database_url: self.database_url.clone(),
            redis_url: None,
            log_format: None,
        }
        .load()
    }
}

impl Common {
    /// What the command line sets over the configuration file and environment.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            log_format: self.log_format.clone(),
        }
    }

    pub fn load(&self) -> Result<Config, String> {
        Config::load(&self.overrides())
    }
}

/// Sets up `tracing` on stderr: the level from `TIDINGS_LOG` (default `info`), each
/// event as a line of text or a JSON object with its fields at the top level.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TIDINGS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let logs = logs
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter_reloading();
            follow_log_level(logs.reload_handle());
            logs.init();
        }
        LogFormat::Json => {
            let logs = logs
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_filter_reloading();
            follow_log_level(logs.reload_handle());
            logs.init();
        }
    }
}

/// The configuration's `log_level` reaches the logger through `handle`, at start and
/// on SIGHUP.
fn follow_log_level<S: 'static>(handle: tracing_subscriber::reload::Handle<EnvFilter, S>) {
    crate::server::on_log_level(move |level| {
        let level = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(level).map_err(|e| e.to_string())
    });
}

/// Runs a parsed command; the error is one line for the user.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(common) => {
            let config = common.load()?;
            init_logs(config.log_format);
            let overrides = common.overrides();
            actix_web::rt::System::new().block_on(crate::server::run(config, overrides))
        }
        Command::Publish {
            remote,
            topic,
            message,
            title,
            priority,
            tags,
        } => {
            let message = match message.as_str() {
                "-" => read_stdin()?,
                _ => message,
            };
            let publication = crate::client::Publication {
                topic,
                message,
                title,
                priority,
                tags,
            };
            init_logs(LogFormat::Text);
            let target = remote.target()?;
            actix_web::rt::System::new().block_on(crate::client::publish(&target, publication))
        }
        Command::Subscribe {
            remote,
            topics,
            since,
            poll,
            max_retries,
        } => {
            init_logs(LogFormat::Text);
            let target = remote.target()?;
            let subscription = crate::client::Subscription {
                topics,
                since,
                poll,
                max_retries,
            };
            actix_web::rt::System::new().block_on(crate::client::subscribe(&target, subscription))
        }
        Command::Backup { common, file } => {
            let config = common.load()?;
            println!("{}", backup::backup(&config.database_url, &file)?);
            Ok(())
        }
        Command::Restore { common, file } => {
            let config = common.load()?;
            println!("{}", backup::restore(&config.database_url, &file)?);
            Ok(())
        }
        Command::User { database, action } => {
            let config = database.load()?;
            init_logs(config.log_format);
            let pool = crate::db::open(&config.database_url)?;
            let store = Store::elsewhere(Arc::new(config), pool);
            let output = actix_web::rt::System::new().block_on(user_command(&store, action))?;
            println!("{output}");
            Ok(())
        }
    }
}

/// Runs a `user` command through the same account operations the server uses.
async fn user_command(store: &Store, action: UserAction) -> Result<String, String> {
    let failed = |e: crate::error::ApiError| e.to_string();
    match action {
        UserAction::Add {
            email,
            username,
            tier,
        } => {
            let new = NewAccount {
                email,
                username,
                password: read_password()?,
                tier,
            };
            let (user, key) = store.add_user(new).await.map_err(failed)?;
            Ok(format!(
                "created user {} <{}> (id {}, tier {})\nAPI key (shown once): {}",
                user.username, user.email, user.id, user.tier, key.secret
            ))
        }
        UserAction::List => {
            let rows = store.users().await.map_err(failed)?;
            let lines: Vec<String> = std::iter::once("email\tusername\ttier\tcreated_at".into())
                .chain(rows.iter().map(|u| {
                    let created = crate::util::rfc3339(u.created_at);
                    format!("{}\t{}\t{}\t{created}", u.email, u.username, u.tier)
                }))
                .collect();
            Ok(lines.join("\n"))
        }
        UserAction::Tier { email, tier } => match store.set_tier(&email, &tier).await {
            Ok(true) => Ok(format!("{email} is now on tier {tier}")),
            Ok(false) => Err(format!("no user with email {email}")),
            Err(e) => Err(failed(e)),
        },
        UserAction::Delete { email } => match store.delete_user(&email).await {
            Ok(true) => Ok(format!("deleted {email}")),
            Ok(false) => Err(format!("no user with email {email}")),
            Err(e) => Err(failed(e)),
        },
    }
}

/// A message from standard input, without the newline that ends its last line.
fn read_stdin() -> Result<String, String> {
    let mut message = String::new();
    std::io::stdin()
        .read_to_string(&mut message)
        .map_err(|e| format!("reading the message from standard input: {e}"))?;
    Ok(without_newline(message))
}

/// A password asked for twice without echo on a terminal, else the first line of
/// standard input: never from the command line, where `ps` and shell history see it.
fn read_password() -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = prompt_hidden("Password: ")?;
        if prompt_hidden("Repeat password: ")? != first {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        read_line()?
    };
    if password.is_empty() {
        return Err("no password given (type it, or give it on standard input)".into());
    }
    Ok(password)
}

fn read_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    Ok(without_newline(line))
}

fn without_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Prints `prompt` on stderr and reads a line from the terminal with echo off (off
/// before the prompt shows, so nothing typed after it is echoed).
fn prompt_hidden(prompt: &str) -> Result<String, String> {
    let line = {
        let _echo_off = EchoOff::on_stdin();
        eprint!("{prompt}");
        read_line()
    };
    eprintln!();
    line
}

/// The terminal on stdin with echo turned off until this is dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn on_stdin() -> Self {
        // SAFETY: termios is plain data that tcgetattr fills in; fd 0 is ours.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Self(None);
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: as above, with a termios tcgetattr filled in.
        let set = unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) };
        Self((set == 0).then_some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read in `on_stdin`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}
