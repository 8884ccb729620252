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
        record(&self.keys, id, at, |last| *last = at);
    }

    pub fn token_used(&self, id: &str, at: i64) {
        record(&self.tokens, id, (at, 1), |(last, count)| {
            *last = at;
            *count += 1;
        });
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

/// Updates `id`'s entry, or adds it as `first`. A credential in use is seen again and
/// again: its id is copied only the first time.
fn record<V>(map: &Mutex<HashMap<String, V>>, id: &str, first: V, update: impl FnOnce(&mut V)) {
    if let Ok(mut map) = map.lock() {
        match map.get_mut(id) {
            Some(entry) => update(entry),
            None => {
                map.insert(id.to_string(), first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_keep_the_latest_time_and_count_token_requests() {
        let usage = Usage::default();
        usage.key_used("k1", 10);
        usage.key_used("k1", 12);
        usage.token_used("t1", 10);
        usage.token_used("t1", 11);
        usage.token_used("t2", 13);
        assert_eq!(usage.keys.lock().unwrap().get("k1"), Some(&12));
        let tokens = usage.tokens.lock().unwrap();
        assert_eq!(tokens.get("t1"), Some(&(11, 2)));
        assert_eq!(tokens.get("t2"), Some(&(13, 1)));
    }
}
