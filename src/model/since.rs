//! The `since=` parameter and the subscriber-side filters.

use std::collections::HashSet;

use crate::error::{detail, ApiError};
use crate::model::message::{parse_priority, split_list, Message};

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Live messages only.
    None,
    All,
    /// Only the newest stored message.
    Latest,
    /// Unix seconds, inclusive.
    Time(i64),
    /// Everything after this message id.
    Id(String),
    /// Everything after this sequence number (pages of a replay; never parsed).
    Seq(i64),
}

impl Since {
    /// `all`, `latest`, `none`, a duration (`10m`), a unix time, or a message id.
    pub fn parse(text: &str, now: i64) -> Result<Self, ApiError> {
        let text = text.trim();
        match text {
            "" | "none" => return Ok(Self::None),
            "all" => return Ok(Self::All),
            "latest" => return Ok(Self::Latest),
            _ => {}
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Self::Time)
                .map_err(|_| ApiError::bad_request(detail::INVALID_SINCE));
        }
        if let Some(secs) = seconds_ago(text) {
            let ago = i64::try_from(secs).unwrap_or(i64::MAX);
            return Ok(Self::Time(now.saturating_sub(ago)));
        }
        // Only text shaped like a message id is one: any other word (`bogus`, `10min`)
        // would match no message and so replay everything.
        if crate::util::message_seq(text).is_some() {
            return Ok(Self::Id(text.to_string()));
        }
        Err(ApiError::bad_request(detail::INVALID_SINCE))
    }
}

/// A duration as `since=` takes it, in seconds: a whole number of one unit, `s`, `m`,
/// `h` or `d` (`30s`, `10m`, `2h`, `7d`). Nothing looser (`10min`, `1h30m`), so a typo
/// is refused rather than read as something else; a number too large to hold
/// reaches back to the start.
fn seconds_ago(text: &str) -> Option<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    if digits.is_empty() {
        return None;
    }
    Some(
        digits
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .saturating_mul(per_unit),
    )
}

/// Subscriber filters: all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    priorities: Option<HashSet<u8>>,
    tags: Vec<String>,
    title: Option<String>,
}

impl Filter {
    pub fn parse(
        priority: Option<&str>,
        tags: Option<&str>,
        title: Option<&str>,
    ) -> Result<Self, ApiError> {
        let priorities = match priority {
            Some(p) if !p.trim().is_empty() => Some(
                split_list(p)
                    .iter()
                    .map(|p| parse_priority(p))
                    .collect::<Result<HashSet<_>, _>>()?,
            ),
            _ => None,
        };
        Ok(Self {
            priorities,
            tags: tags.map(split_list).unwrap_or_default(),
            title: title.filter(|t| !t.is_empty()).map(String::from),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.priorities.is_none() && self.tags.is_empty() && self.title.is_none()
    }

    pub fn matches(&self, m: &Message) -> bool {
        if let Some(ps) = &self.priorities {
            if !ps.contains(&m.priority) {
                return false;
            }
        }
        if let Some(title) = &self.title {
            if m.title.as_deref() != Some(title.as_str()) {
                return false;
            }
        }
        self.tags.iter().all(|t| m.tags.iter().any(|mt| mt == t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_duration_reaches_back_to_the_start_without_overflowing() {
        let huge = "883166666666661666166666666661666663333332119999d";
        assert_eq!(
            Since::parse(huge, 1_764_000_000).ok(),
            Some(Since::Time(1_764_000_000 - i64::MAX))
        );
        let far = format!("{}s", u64::MAX / 2);
        assert_eq!(
            Since::parse(&far, i64::MIN + 5).ok(),
            Some(Since::Time(i64::MIN))
        );
    }

    #[test]
    fn since_forms() {
        assert_eq!(Since::parse("all", 100).unwrap(), Since::All);
        assert_eq!(Since::parse("10m", 1000).unwrap(), Since::Time(400));
        assert_eq!(Since::parse("30s", 1000).unwrap(), Since::Time(970));
        assert_eq!(Since::parse("1d", 90_000).unwrap(), Since::Time(3600));
        assert_eq!(
            Since::parse("1700000000", 0).unwrap(),
            Since::Time(1700000000)
        );
        assert_eq!(
            Since::parse("000002Ab3xYz", 0).unwrap(),
            Since::Id("000002Ab3xYz".into())
        );
        for bad in ["a b", "bogus", "10min", "1h30m", "m", "Ab3x", "-5", "1.5h"] {
            let e = Since::parse(bad, 0).unwrap_err();
            assert_eq!(e.to_string(), "Invalid since", "{bad:?}");
        }
    }

    #[test]
    fn filters_require_every_condition() {
        let m = Message {
            id: "x".into(),
            time: 0,
            event: "message",
            topic: "t".into(),
            message: "m".into(),
            title: Some("T".into()),
            priority: 4,
            tags: vec!["a".into(), "b".into()],
            expires: 0,
            seq: 1,
        };
        assert!(Filter::parse(Some("high,5"), Some("a"), Some("T"))
            .unwrap()
            .matches(&m));
        assert!(!Filter::parse(Some("1"), None, None).unwrap().matches(&m));
        assert!(!Filter::parse(None, Some("a,c"), None).unwrap().matches(&m));
        assert!(!Filter::parse(None, None, Some("other"))
            .unwrap()
            .matches(&m));
        assert!(Filter::parse(None, None, None).unwrap().is_empty());
    }
}
