//! Request extractors that fail in the AWS error shape: JSON bodies, query parameters, paging.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use thingward_models::time::{EpochMillis, parse_query_timestamp};

/// A JSON body; a missing or malformed body (or one that is not UTF-8 anywhere) is an
/// `InvalidRequestException` naming the problem.
/// An empty body is read as `{}` (botocore sends none when no member is set).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // serde_json checks UTF-8 only in the strings it keeps: invalid bytes inside an unknown
        // member would be skipped, so the whole body is checked first (issue 14).
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ApiError::InvalidRequest(format!("Malformed request body: not UTF-8 ({e})"))
        })?;
        serde_json::from_str(text)
            .map(ApiJson)
            .map_err(|e| ApiError::InvalidRequest(format!("Malformed request body: {e}")))
    }
}

/// A raw request body (device reports, batches); a body over the size limit is a 413
/// `PayloadTooLargeException` in the AWS error shape, not axum's plain-text rejection.
#[derive(Debug)]
pub(crate) struct ApiBytes(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("The request body is over the size limit".into())
                } else {
                    ApiError::InvalidRequest(format!("Could not read the request body: {e}"))
                }
            })
    }
}

/// Path parameters; one that does not decode (e.g. percent-encoded bytes that are not UTF-8)
/// is an `InvalidRequestException`, not axum's plain-text rejection.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| {
                ApiError::InvalidRequest(format!("Invalid request path: {}", e.body_text()))
            })
    }
}

/// The query string as a map, with typed accessors that validate.
#[derive(Debug, Default)]
pub(crate) struct QueryMap(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let map: HashMap<String, String> = serde_urlencoded_pairs(q)?;
        Ok(Self(map))
    }
}

fn serde_urlencoded_pairs(q: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut map = HashMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::InvalidRequest("Query string is not UTF-8".into()))
        };
        map.insert(decode(k)?, decode(v)?);
    }
    Ok(map)
}

impl QueryMap {
    /// A string parameter.
    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required string parameter.
    ///
    /// # Errors
    /// When absent.
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.str(name)
            .ok_or_else(|| ApiError::InvalidRequest(format!("Query parameter {name} is required")))
    }

    /// A boolean parameter (`true`/`false`).
    ///
    /// # Errors
    /// When present but not a boolean.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.str(name)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::InvalidRequest(format!(
                    "{name} must be true or false, got '{v}'"
                ))),
            })
            .transpose()
    }

    /// An integer parameter within `range`.
    ///
    /// # Errors
    /// When present but not an integer in range.
    pub(crate) fn int(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        self.str(name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ApiError::InvalidRequest(format!(
                            "{name} must be an integer in {}..{}, got '{v}'",
                            range.start(),
                            range.end()
                        ))
                    })
            })
            .transpose()
    }

    /// A timestamp parameter (ISO-8601, as botocore sends it).
    ///
    /// # Errors
    /// When present but not a timestamp.
    pub(crate) fn time(&self, name: &str) -> Result<Option<EpochMillis>, ApiError> {
        self.str(name)
            .map(|v| {
                parse_query_timestamp(v)
                    .map_err(|e| ApiError::InvalidRequest(format!("{name}: {e}")))
            })
            .transpose()
    }

    /// The required `startTime` and `endTime` parameters, `endTime` not before `startTime`.
    ///
    /// # Errors
    /// When either is absent or not a timestamp, or the range is reversed.
    pub(crate) fn time_range(&self) -> Result<(EpochMillis, EpochMillis), ApiError> {
        let required = |name: &str| {
            self.time(name)?.ok_or_else(|| {
                ApiError::InvalidRequest(format!("Query parameter {name} is required"))
            })
        };
        let (start, end) = (required("startTime")?, required("endTime")?);
        if end < start {
            return Err(ApiError::InvalidRequest(
                "endTime is before startTime".into(),
            ));
        }
        Ok((start, end))
    }

    /// The paging parameters `nextToken` and `maxResults` (`max` is the shape's upper bound).
    ///
    /// # Errors
    /// A malformed token or an out-of-range page size.
    pub(crate) fn page(&self, default: usize, max: i64) -> Result<Page, ApiError> {
        let size = self.int("maxResults", 1..=max)?;
        Page::from_parts(self.str("nextToken"), size, "maxResults", default, max)
    }
}

/// One page of a listing. The offset is at most `u32::MAX` (a token we never issue is refused as
/// malformed), so `offset + limit + 1` neither overflows nor leaves SQLite's signed 64-bit
/// integers (issue 14: a token above `i64::MAX` was a 500).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

impl Page {
    /// A page from a token and a size that come from elsewhere than `nextToken`/`maxResults` in
    /// the query (a JSON body; AWS IoT's `marker`/`pageSize`); `size_name` names the size member
    /// in errors.
    ///
    /// # Errors
    /// A malformed token or a size outside `1..=max`.
    pub(crate) fn from_parts(
        token: Option<&str>,
        size: Option<i64>,
        size_name: &str,
        default: usize,
        max: i64,
    ) -> Result<Page, ApiError> {
        let limit = match size {
            None => default,
            Some(n) if (1..=max).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::InvalidRequest(format!(
                    "{size_name} must be an integer in 1..{max}, got {n}"
                )));
            }
        };
        let offset = match token {
            None | Some("") => 0,
            Some(t) => t
                .strip_prefix('o')
                .and_then(|n| n.parse::<u32>().ok())
                .map(|n| n as usize)
                .ok_or_else(|| ApiError::InvalidRequest(format!("Invalid nextToken '{t}'")))?,
        };
        Ok(Page { offset, limit })
    }

    /// A List* response: `{key: items}`, plus `nextToken` when there is a next page (left out
    /// on the last one).
    pub(crate) fn response(
        key: &str,
        items: impl serde::Serialize,
        next: Option<String>,
    ) -> axum::Json<serde_json::Value> {
        Self::keyed_response(key, items, "nextToken", next)
    }

    /// Like [`Page::response`] for AWS IoT's `marker`-paged listings (ListCertificates,
    /// ListPolicies, …): `nextMarker` instead of `nextToken`.
    pub(crate) fn marker_response(
        key: &str,
        items: impl serde::Serialize,
        next: Option<String>,
    ) -> axum::Json<serde_json::Value> {
        Self::keyed_response(key, items, "nextMarker", next)
    }

    fn keyed_response(
        key: &str,
        items: impl serde::Serialize,
        token_key: &str,
        next: Option<String>,
    ) -> axum::Json<serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert(key.into(), serde_json::json!(items));
        if let Some(n) = next {
            out.insert(token_key.into(), n.into());
        }
        axum::Json(serde_json::Value::Object(out))
    }

    /// Cuts `items` (everything from `offset` on, or the whole list when `whole`) to one page
    /// and returns it with the token of the next page, if any.
    pub(crate) fn slice<T>(self, mut items: Vec<T>) -> (Vec<T>, Option<String>) {
        let rest = items.split_off(self.offset.min(items.len()));
        self.cut(rest)
    }

    /// Like `slice` for items already starting at `offset` (fetched with `limit + 1`).
    pub(crate) fn cut<T>(self, mut items: Vec<T>) -> (Vec<T>, Option<String>) {
        if items.len() > self.limit {
            items.truncate(self.limit);
            (items, Some(format!("o{}", self.offset + self.limit)))
        } else {
            (items, None)
        }
    }
}
