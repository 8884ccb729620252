//! Paged lists: `limit` (default 100, at most 1000) and `cursor` (opaque, from the
//! page before) in; the page as a JSON array out, with the next page's cursor in
//! `X-Next-Cursor` and in a `Link: <…>; rel="next"` header, both absent on the last page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::db::Page;
use crate::error::detail;
use crate::error::{ApiError, ApiResult};

const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
pub const NEXT_CURSOR: &str = "X-Next-Cursor";

/// The paging parameters of a list request (others, such as `api_key`, are ignored).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows per page, 1-1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `X-Next-Cursor` of the page before.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> ApiResult<Page> {
        Ok(Page {
            after: self.cursor.as_deref().map(decode).transpose()?,
            limit: parse_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?,
        })
    }
}

/// A `limit` parameter: `default` when absent, else a whole number from 1 to `max`.
pub fn parse_limit(text: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    let Some(text) = text else {
        return Ok(default);
    };
    text.parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::invalid_limit(max))
}

/// A cursor is the (`created_at`, id) of a page's last row, so the next page starts
/// right after it however many rows were added or deleted meanwhile.
fn encode((created_at, id): &(i64, String)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}.{id}"))
}

fn decode(cursor: &str) -> ApiResult<(i64, String)> {
    let invalid = || ApiError::bad_request(detail::INVALID_CURSOR);
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (created_at, id) = text.split_once('.').ok_or_else(invalid)?;
    let created_at = created_at.parse().map_err(|_| invalid())?;
    Ok((created_at, id.to_string()))
}

/// Answers with one page of `rows`, fetched for `page` (one row more than its limit
/// when another page follows), each shown by `view`; `position` is a row's
/// (`created_at`, id).
pub fn respond<R, V: Serialize>(
    req: &HttpRequest,
    page: &Page,
    mut rows: Vec<R>,
    position: impl Fn(&R) -> (i64, String),
    view: impl FnMut(R) -> V,
) -> HttpResponse {
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    let mut response = HttpResponse::Ok();
    if let Some(last) = rows.last().filter(|_| more) {
        let cursor = encode(&position(last));
        let next = format!(
            "<{}?limit={}&cursor={cursor}>; rel=\"next\"",
            req.path(),
            page.limit
        );
        response
            .insert_header((NEXT_CURSOR, cursor))
            .insert_header((header::LINK, next));
    }
    response.json(rows.into_iter().map(view).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let position = (1_700_000_000, "a.b-c".to_string());
        assert_eq!(decode(&encode(&position)).unwrap(), position);
        for bad in ["", "!!", "bm9kb3Q", &URL_SAFE_NO_PAD.encode("x.id")] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.to_string(), "Invalid cursor", "{bad:?}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None, 100, 1000).unwrap(), 100);
        assert_eq!(parse_limit(Some("1000"), 100, 1000).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            let err = parse_limit(Some(bad), 100, 1000).unwrap_err();
            assert_eq!(err.to_string(), "Invalid limit (1-1000)", "{bad:?}");
        }
    }
}
