//! tidings: a self-hosted realtime notification broker.
//!
//! Module map (the layer order is in ARCHITECTURE.md; `tests/layers.rs` keeps it):
//! - [`config`]: typed configuration from defaults, TOML, environment and flags.
//! - [`error`]: the one API error type, rendered as a status and `{"detail"}`.
//! - [`model`]: the message object, its JSON and encodings, `since` and filters.
//! - [`db`]: Diesel pool, embedded migrations, queries.
//! - [`pipeline`]: storing published messages (the writer and its journal) and
//!   reading history back.
//! - [`broker`]: topic actors (subscribers, fan-out), session actors (one per
//!   connection).
//! - [`service`]: the domain: accounts, API keys, topics, topic tokens and client
//!   settings, each operation written once for the HTTP handlers and the admin CLI.
//! - [`http`]: routes and thin handlers (parse, call the service, render).
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
pub mod model;
pub mod pipeline;
pub mod server;
pub mod service;
pub mod util;
