//! Cluster-wide publish quotas: the generic cell rate algorithm, run atomically in
//! Redis so that every node draws on the same allowance.

use std::sync::LazyLock;

use redis::Script;

use crate::error::ApiError;
use std::time::Duration;

use crate::error::Allowance;

/// A script over one account's quota: the preamble both share, then `$rest`.
/// KEYS[1]: the account's limiter key. ARGV[1]: milliseconds between two cells
/// (a minute / quota); ARGV[2]: burst (the whole minute's quota). The preamble sets
/// `now` (Redis' clock, ms), `interval`, `burst` and `tat`, the theoretical arrival
/// time (no earlier than now).
macro_rules! quota_script {
    ($rest:literal) => {
        concat!(
            r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
",
            $rest
        )
    };
}

/// Charges one cell. Returns {allowed, wait_ms, remaining}. The key expires once it
/// is idle.
const GCRA: &str = quota_script!(
    r"
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0, math.floor((now - allow_at) / interval)}
"
);

/// Returns how many cells the quota would give now, without charging any.
const LEFT: &str = quota_script!(
    r"
local left = math.floor((now - (tat - interval * burst)) / interval)
if left < 0 then left = 0 end
if left > burst then left = burst end
return left
"
);

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA));
static LEFT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LEFT));

/// The account's limiter key and the milliseconds between two cells.
fn quota_key(account: &str, per_minute: u32) -> (String, u64) {
    let interval_ms = (60_000 / u64::from(per_minute.max(1))).max(1);
    (format!("tidings:quota:{account}"), interval_ms)
}

/// Charges one publish of `account` against `per_minute`.
pub fn charge(
    conn: &mut redis::Connection,
    account: &str,
    per_minute: u32,
) -> redis::RedisResult<Result<Allowance, ApiError>> {
    let (key, interval_ms) = quota_key(account, per_minute);
    let (allowed, wait_ms, remaining): (i64, i64, i64) = SCRIPT
        .key(key)
        .arg(interval_ms)
        .arg(per_minute)
        .invoke(conn)?;
    Ok(if allowed == 1 {
        Ok(Allowance {
            limit: per_minute,
            remaining: u32::try_from(remaining).unwrap_or(0),
        })
    } else {
        Err(ApiError::rate_limited(
            per_minute,
            Duration::from_millis(wait_ms.max(1) as u64),
        ))
    })
}

/// What is left of `account`'s quota of `per_minute`, without charging it.
pub fn left(
    conn: &mut redis::Connection,
    account: &str,
    per_minute: u32,
) -> redis::RedisResult<u32> {
    let (key, interval_ms) = quota_key(account, per_minute);
    let left: i64 = LEFT_SCRIPT
        .key(key)
        .arg(interval_ms)
        .arg(per_minute)
        .invoke(conn)?;
    Ok(u32::try_from(left).unwrap_or(0))
}
