//! Paging belongs to the store: a page request (how many, from which cursor), the
//! page it answers with, and the opaque cursor between them. The edge only parses
//! `?limit=&cursor=` into a `PageRequest` (`crate::http::request`).
//!
//! A cursor is the DynamoDB `LastEvaluatedKey` as base64url JSON; on the way back
//! in it is checked to hold exactly the expected key attributes and to stay inside
//! the partition being listed, so a forged cursor can neither error the SDK nor
//! read another partition.

use super::StoreError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;

/// One page of a list: at most `limit` items, from `cursor` (a previous page's
/// `next_cursor`) or from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The cursor given is not one this list handed out (or it points into another
/// partition): the caller's input, answered 400 naming `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not a valid cursor")]
pub struct BadCursor;

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type CursorKey = BTreeMap<String, String>;

const MAX_CURSOR_LEN: usize = 2048;

pub fn encode(key: &CursorKey) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// `expected_attrs`: the key attribute names of the index being queried.
/// `partition`: (attribute, value) the cursor must stay within.
pub fn decode(raw: &str, expected_attrs: &[&str], partition: (&str, &str)) -> Result<CursorKey, BadCursor> {
    let invalid = || BadCursor;
    if raw.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let key: CursorKey = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let mut names: Vec<&str> = key.keys().map(String::as_str).collect();
    let mut expected = expected_attrs.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    if names != expected || key.get(partition.0).map(String::as_str) != Some(partition.1) {
        return Err(invalid());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        [("PK", "TIER#a"), ("SK", "META"), ("GSI1PK", "TIERS"), ("GSI1SK", "standard#001#a")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_and_tamper_checks() {
        let attrs = ["PK", "SK", "GSI1PK", "GSI1SK"];
        let c = encode(&key());
        assert_eq!(decode(&c, &attrs, ("GSI1PK", "TIERS")).unwrap(), key());
        assert!(decode(&c, &attrs, ("GSI1PK", "OTHER")).is_err());
        assert!(decode("not base64!", &attrs, ("GSI1PK", "TIERS")).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode(b"[1,2]"), &attrs, ("GSI1PK", "TIERS")).is_err());
        let mut extra = key();
        extra.insert("X".into(), "y".into());
        assert!(decode(&encode(&extra), &attrs, ("GSI1PK", "TIERS")).is_err());
        assert!(decode(&"A".repeat(5000), &attrs, ("GSI1PK", "TIERS")).is_err());
    }
}
