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
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// TOML configuration file.
    #[arg(long, env = "TIDINGS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// `sqlite://PATH` or a file path (default sqlite://tidings.db).
    #[arg(long)]
    pub database_url: Option<String>,
}

impl Common {
    pub fn load(&self) -> Result<Config, String> {
        Config::load(&Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
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
    }
}
