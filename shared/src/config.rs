//! Configuration is read once, at init, from the environment.

use crate::domain::permissions::Grants;
use std::env;

#[derive(Debug, Clone)]
pub struct Config {
    /// The single table (`TABLE_NAME`).
    pub table_name: String,
    /// Set only locally (`DYNAMODB_ENDPOINT`), to point the SDK at DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    /// Requests with a larger body get a 413 before any parsing (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Page size when a list request names none (`DEFAULT_PAGE_SIZE`).
    pub default_page_size: u32,
    /// Largest page a client may ask for (`MAX_PAGE_SIZE`).
    pub max_page_size: u32,
    /// How long an instance may serve a public catalog response from memory
    /// (`PUBLIC_CACHE_TTL_SECS`; 0 turns the cache off).
    pub public_cache_ttl_secs: u64,
    /// How long an instance may answer a partner's feature checks from the partner
    /// and counters it last read (`FEATURE_CHECK_CACHE_SECS`; 0 turns it off). Hard
    /// limits do not depend on it: track checks and deducts in one conditional write.
    pub feature_check_cache_secs: u64,
    /// Which role holds which permission: always seed 000's table here; never read
    /// from the environment or a request. Tests may narrow it on a `Config` of their
    /// own to tell apart checks seed 000 grants together.
    pub grants: Grants,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let table_name = env::var("TABLE_NAME").map_err(|_| ConfigError::Missing("TABLE_NAME"))?;
        if table_name.len() < 3 {
            return Err(ConfigError::Invalid { name: "TABLE_NAME", reason: "must be at least 3 characters".into() });
        }
        let config = Self {
            table_name,
            dynamodb_endpoint: env::var("DYNAMODB_ENDPOINT").ok().filter(|s| !s.is_empty()),
            max_body_bytes: parse_or("MAX_BODY_BYTES", 64 * 1024)?,
            default_page_size: parse_or("DEFAULT_PAGE_SIZE", 50)?,
            max_page_size: parse_or("MAX_PAGE_SIZE", 100)?,
            public_cache_ttl_secs: parse_or("PUBLIC_CACHE_TTL_SECS", 5)?,
            feature_check_cache_secs: parse_or("FEATURE_CHECK_CACHE_SECS", 5)?,
            grants: Grants::SEED_000,
        };
        if config.default_page_size == 0 || config.default_page_size > config.max_page_size {
            return Err(ConfigError::Invalid {
                name: "DEFAULT_PAGE_SIZE",
                reason: "must be between 1 and MAX_PAGE_SIZE".into(),
            });
        }
        Ok(config)
    }

    /// A configuration for a named table with the default limits.
    pub fn for_table(table_name: impl Into<String>, dynamodb_endpoint: Option<String>) -> Self {
        Self {
            table_name: table_name.into(),
            dynamodb_endpoint,
            max_body_bytes: 64 * 1024,
            default_page_size: 50,
            max_page_size: 100,
            public_cache_ttl_secs: 5,
            feature_check_cache_secs: 5,
            grants: Grants::SEED_000,
        }
    }
}

fn parse_or<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env::var(name) {
        Ok(raw) if !raw.is_empty() => {
            raw.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() })
        }
        _ => Ok(default),
    }
}
