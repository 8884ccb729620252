//! `last_used_at` and request counts of API keys and topic tokens, gathered in
//! memory and written in one go every few seconds instead of once per request.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::{self, Conn};

#[derive(Default)]
pub struct Usage {
    keys: Mutex<HashMap<String, i64>>,
    tokens: Mutex<HashMap<String, (i64, i64)>>,
}

impl Usage {
    pub fn key_used(&self, id: &str, at: i64) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(id.to_string(), at);
        }
    }

    pub fn token_used(&self, id: &str, at: i64) {
        if let Ok(mut tokens) = self.tokens.lock() {
            let entry = tokens.entry(id.to_string()).or_insert((at, 0));
            *entry = (at, entry.1 + 1);
        }
    }

    /// Writes what was gathered since the last flush (blocking; call off the workers).
    pub fn flush(&self, conn: &mut Conn) {
        let keys = self.keys.lock().map(|mut k| std::mem::take(&mut *k));
        let tokens = self.tokens.lock().map(|mut t| std::mem::take(&mut *t));
        let (Ok(keys), Ok(tokens)) = (keys, tokens) else {
            return;
        };
        if keys.is_empty() && tokens.is_empty() {
            return;
        }
        let written = (|| -> diesel::QueryResult<()> {
            for (id, at) in &keys {
                db::keys::touch_key(conn, id, *at)?;
            }
            for (id, (at, uses)) in &tokens {
                db::topics::touch_token(conn, id, *at, *uses)?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record credential usage");
        }
    }
}
