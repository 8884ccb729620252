//! The `since=` parameter and the subscriber-side filters.

use std::collections::HashSet;

use crate::broker::message::{parse_priority, split_list, Message};
use crate::error::ApiError;

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
                .map_err(|_| ApiError::bad_request("Invalid since parameter"));
        }
        if text.starts_with(|c: char| c.is_ascii_digit()) {
            if let Ok(d) = crate::config::parse_duration(text) {
                let ago = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                return Ok(Self::Time(now.saturating_sub(ago)));
            }
        }
        if text.len() <= 32 && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(Self::Id(text.to_string()));
        }
        Err(ApiError::bad_request("Invalid since parameter"))
    }
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
        let huge = "883166666us666661666us166666us666661666us66333333211yr";
        assert!(matches!(
            Since::parse(huge, 1_764_000_000),
            Ok(Since::Time(_))
        ));
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
        assert_eq!(
            Since::parse("1700000000", 0).unwrap(),
            Since::Time(1700000000)
        );
        assert_eq!(Since::parse("Ab3x", 0).unwrap(), Since::Id("Ab3x".into()));
        assert!(Since::parse("a b", 0).is_err());
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
