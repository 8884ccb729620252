//! The `tidings` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};

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
    /// Print the messages of one or more (comma-separated) topics as JSON lines.
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
    },
    /// Manage accounts (works while the server runs, on the same database).
    User {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account (with its first API key, printed once).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
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

/// How `publish` and `subscribe` reach a server.
#[derive(Debug, Args)]
pub struct Remote {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API key (`noti_…`).
    #[arg(long)]
    pub api_key: Option<String>,
    /// A topic token (`tk_…`) or an access JWT.
    #[arg(long)]
    pub token: Option<String>,
}

impl Remote {
    fn target(self) -> crate::client::Target {
        crate::client::Target {
            server: self.server,
            api_key: self.api_key,
            token: self.token,
        }
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
}

impl Common {
    pub fn load(&self) -> Result<Config, String> {
        Config::load(&Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
        })
    }
}

/// Runs a parsed command; the error is one line for the user.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(common) => {
            let config = common.load()?;
            actix_web::rt::System::new().block_on(crate::server::run(config))
        }
        Command::Publish {
            remote,
            topic,
            message,
            title,
            priority,
            tags,
        } => {
            let publication = crate::client::Publication {
                topic,
                message,
                title,
                priority,
                tags,
            };
            let target = remote.target();
            actix_web::rt::System::new().block_on(crate::client::publish(&target, publication))
        }
        Command::Subscribe {
            remote,
            topics,
            since,
            poll,
        } => {
            let target = remote.target();
            actix_web::rt::System::new().block_on(crate::client::subscribe(
                &target,
                &topics,
                since.as_deref(),
                poll,
            ))
        }
        Command::User { common, action } => {
            let config = common.load()?;
            let pool = crate::db::open(&config.database_url)?;
            let mut conn = pool
                .get()
                .map_err(|e| format!("cannot open database: {e}"))?;
            let output = user_command(&mut conn, &config, action)?;
            crate::db::settings::bump_auth_epoch(&mut conn)
                .map_err(|e| format!("database error: {e}"))?;
            println!("{output}");
            Ok(())
        }
    }
}

fn user_command(
    conn: &mut crate::db::Conn,
    config: &Config,
    action: UserAction,
) -> Result<String, String> {
    use crate::auth::accounts::{create_api_key, create_user, NewUser};
    use crate::db::users;
    let check_tier = |tier: &str| {
        if config.limits.tiers.contains_key(tier) {
            Ok(())
        } else {
            let known: Vec<_> = config.limits.tiers.keys().cloned().collect();
            Err(format!(
                "unknown tier `{tier}` (known: {})",
                known.join(", ")
            ))
        }
    };
    let db_error = |e: diesel::result::Error| format!("database error: {e}");
    match action {
        UserAction::Add {
            email,
            username,
            password,
            tier,
        } => {
            let tier = tier.unwrap_or_else(|| config.limits.default_tier.clone());
            check_tier(&tier)?;
            let new = NewUser {
                email: &email,
                username: &username,
                password: &password,
                tier: &tier,
            };
            let user = create_user(conn, &new).map_err(|e| e.to_string())?;
            let key = create_api_key(conn, &user.id, "Default", None).map_err(|e| e.to_string())?;
            Ok(format!(
                "created user {} <{}> (id {}, tier {})\nAPI key (shown once): {}",
                user.username, user.email, user.id, user.tier, key.secret
            ))
        }
        UserAction::List => {
            let rows = users::all(conn).map_err(db_error)?;
            let lines: Vec<String> = std::iter::once("email\tusername\ttier\tcreated_at".into())
                .chain(rows.iter().map(|u| {
                    let created = crate::util::rfc3339(u.created_at);
                    format!("{}\t{}\t{}\t{created}", u.email, u.username, u.tier)
                }))
                .collect();
            Ok(lines.join("\n"))
        }
        UserAction::Tier { email, tier } => {
            check_tier(&tier)?;
            match users::set_tier(conn, &email.to_lowercase(), &tier).map_err(db_error)? {
                0 => Err(format!("no user with email {email}")),
                _ => Ok(format!("{email} is now on tier {tier}")),
            }
        }
        UserAction::Delete { email } => {
            match users::delete(conn, &email.to_lowercase()).map_err(db_error)? {
                0 => Err(format!("no user with email {email}")),
                _ => Ok(format!("deleted {email}")),
            }
        }
    }
}
