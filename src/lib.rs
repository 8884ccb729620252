//! tidings: a self-hosted realtime notification broker.
//!
//! Module map:
//! - [`config`]: typed configuration from defaults, TOML, environment and flags.
//! - [`error`]: the one API error type, rendered as a status and `{"detail"}`.
//! - [`db`]: Diesel pool, embedded migrations, queries, and the single message writer.
//! - [`broker`]: topic actors (subscribers, fan-out), session actors (one per
//!   connection), the message object and its encodings, `since` and filters.
//! - [`http`]: routes and thin handlers.
//! - [`cluster`]: several nodes on one database, fanning out through Redis.
//! - [`server`]: wires everything together and serves; [`cores`]: HTTP workers pinned to cores.
//! - [`cli`]: the `tidings` command line; [`client`]: its `publish`/`subscribe` client.

pub mod auth;
pub mod broker;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod cores;
pub mod db;
pub mod error;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod util;
