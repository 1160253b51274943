//! Parsing request bodies into domain types ("parse, don't validate").
//!
//! `Fields` walks one JSON object, rejects unknown keys, and collects *every*
//! failing field (with its dotted path) instead of stopping at the first, so a
//! 400 can name them all in `details.fields`.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, thiserror::Error)]
#[error("invalid fields: {fields:?}")]
pub struct ValidationError {
    pub fields: BTreeMap<String, String>,
}

impl ValidationError {
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut fields = BTreeMap::new();
        fields.insert(field.into(), message.into());
        Self { fields }
    }
}

pub type Parser<T> = fn(&Value) -> Result<T, String>;

pub struct Fields<'a> {
    object: Option<&'a Map<String, Value>>,
    prefix: String,
    errors: BTreeMap<String, String>,
}

impl<'a> Fields<'a> {
    /// Starts reading `value`, which must be a JSON object holding only `allowed` keys.
    pub fn new(value: &'a Value, allowed: &[&str]) -> Self {
        Self::with_prefix(value, allowed, String::new(), "body")
    }

    fn with_prefix(value: &'a Value, allowed: &[&str], prefix: String, name: &str) -> Self {
        let mut fields = Self { object: value.as_object(), prefix, errors: BTreeMap::new() };
        match fields.object {
            None => {
                fields.errors.insert(name.to_string(), "must be a JSON object".into());
            }
            Some(object) => {
                for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
                    let path = fields.path(key);
                    fields.errors.insert(path, "is not a known field".into());
                }
            }
        }
        fields
    }

    fn path(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.object.is_some_and(|o| o.contains_key(key))
    }

    pub fn fail(&mut self, key: &str, message: impl Into<String>) {
        let path = self.path(key);
        self.errors.entry(path).or_insert_with(|| message.into());
    }

    /// A field that must be present and valid.
    pub fn required<T>(&mut self, key: &str, parse: Parser<T>) -> Option<T> {
        match self.object.and_then(|o| o.get(key)) {
            None | Some(Value::Null) => {
                if self.object.is_some() {
                    self.fail(key, "is required");
                }
                None
            }
            Some(v) => self.run(key, v, parse),
        }
    }

    /// A field that may be absent; `null` counts as absent.
    pub fn optional<T>(&mut self, key: &str, parse: Parser<T>) -> Option<T> {
        match self.object.and_then(|o| o.get(key)) {
            None | Some(Value::Null) => None,
            Some(v) => self.run(key, v, parse),
        }
    }

    /// A field where `null` is a meaningful value (e.g. "unlimited", "no incentive").
    /// Outer `None`: absent or invalid. `Some(None)`: explicitly null.
    pub fn nullable<T>(&mut self, key: &str, parse: Parser<T>) -> Option<Option<T>> {
        match self.object.and_then(|o| o.get(key)) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => self.run(key, v, parse).map(Some),
        }
    }

    /// A nested object, read with its own allowed keys; errors carry the dotted path.
    pub fn object<T>(
        &mut self,
        key: &str,
        allowed: &[&str],
        read: impl FnOnce(&mut Fields<'a>) -> Option<T>,
    ) -> Option<T> {
        let value = match self.object.and_then(|o| o.get(key)) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        let path = self.path(key);
        let mut child = Fields::with_prefix(value, allowed, format!("{path}."), &path);
        let out = read(&mut child);
        let ok = child.errors.is_empty();
        self.errors.extend(child.errors);
        if ok {
            out
        } else {
            None
        }
    }

    /// An array whose elements are objects, each read with `read`.
    pub fn array_of_objects<T>(
        &mut self,
        key: &str,
        max_len: usize,
        allowed: &[&str],
        mut read: impl FnMut(&mut Fields<'a>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let value = match self.object.and_then(|o| o.get(key)) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        let Some(items) = value.as_array() else {
            self.fail(key, "must be an array");
            return None;
        };
        if items.len() > max_len {
            self.fail(key, format!("must have at most {max_len} items"));
            return None;
        }
        let base = self.path(key);
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{base}[{i}]");
            let mut child = Fields::with_prefix(item, allowed, format!("{path}."), &path);
            let parsed = read(&mut child);
            if child.errors.is_empty() {
                if let Some(p) = parsed {
                    out.push(p);
                }
            } else {
                ok = false;
                self.errors.extend(child.errors);
            }
        }
        ok.then_some(out)
    }

    /// An object used as a map from names to values of one type.
    pub fn map_of<T>(
        &mut self,
        key: &str,
        max_len: usize,
        key_parse: Parser<String>,
        value_parse: fn(&Value) -> Result<T, String>,
    ) -> Option<std::collections::BTreeMap<String, T>> {
        let value = match self.object.and_then(|o| o.get(key)) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        let Some(map) = value.as_object() else {
            self.fail(key, "must be an object");
            return None;
        };
        if map.len() > max_len {
            self.fail(key, format!("must have at most {max_len} entries"));
            return None;
        }
        let base = self.path(key);
        let mut out = std::collections::BTreeMap::new();
        let mut ok = true;
        for (name, v) in map {
            let path = format!("{base}.{name}");
            match (key_parse(&Value::String(name.clone())), value_parse(v)) {
                (Ok(k), Ok(parsed)) => {
                    out.insert(k, parsed);
                }
                (Err(e), _) | (_, Err(e)) => {
                    ok = false;
                    self.errors.entry(path).or_insert(e);
                }
            }
        }
        ok.then_some(out)
    }

    fn run<T>(&mut self, key: &str, value: &Value, parse: Parser<T>) -> Option<T> {
        match parse(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.fail(key, message);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ValidationError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { fields: self.errors })
        }
    }
}

/// Field parsers shared by every area.
pub mod parse {
    use serde_json::Value;

    pub fn text(v: &Value, min: usize, max: usize) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        let trimmed = s.trim();
        let len = trimmed.chars().count();
        if len < min {
            return Err(if min == 1 {
                "must not be empty".into()
            } else {
                format!("must be at least {min} characters")
            });
        }
        if len > max {
            return Err(format!("must be at most {max} characters"));
        }
        if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err("must not contain control characters".into());
        }
        Ok(trimmed.to_string())
    }

    /// A calendar day `YYYY-MM-DD` between the years 2000 and 2100.
    pub fn date(v: &Value) -> Result<chrono::NaiveDate, String> {
        let s = v.as_str().ok_or("must be a date string YYYY-MM-DD")?;
        if s.len() != 10 {
            return Err("must be a date YYYY-MM-DD".into());
        }
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| "must be a real date YYYY-MM-DD".to_string())?;
        let year = chrono::Datelike::year(&d);
        if !(2000..=2100).contains(&year) {
            return Err("must be between 2000 and 2100".into());
        }
        Ok(d)
    }

    /// An array of slugs, each kept once (a repeat is dropped), at most `max`.
    pub fn slugs(v: &Value, max: usize) -> Result<Vec<String>, String> {
        let items = v.as_array().ok_or("must be an array of ids")?;
        if items.len() > max {
            return Err(format!("names at most {max} ids"));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let id = slug(item)?;
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Lower-case identifiers used in URLs and keys: `[a-z0-9][a-z0-9_-]{0,39}`.
    /// `#` can never appear, so ids cannot break the `PREFIX#id` key format.
    pub fn slug(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        if is_slug(s) {
            Ok(s.to_string())
        } else {
            Err("must be 1-40 characters of a-z, 0-9, '_' or '-', starting with a letter or digit".into())
        }
    }

    pub fn is_slug(s: &str) -> bool {
        let bytes = s.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 40
            && bytes[0].is_ascii_alphanumeric()
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
    }

    /// Limit names are camelCase words such as `imagesPerListing`.
    pub fn limit_name(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(s.to_string())
        } else {
            Err("limit names must be 1-40 ASCII letters or digits, starting lower-case".into())
        }
    }

    pub fn boolean(v: &Value) -> Result<bool, String> {
        v.as_bool().ok_or_else(|| "must be true or false".into())
    }

    pub fn int_in(v: &Value, min: i64, max: i64) -> Result<i64, String> {
        let n = v.as_i64().ok_or("must be an integer")?;
        if n < min || n > max {
            return Err(format!("must be between {min} and {max}"));
        }
        Ok(n)
    }

    /// The largest amount the API accepts: $10 billion, far from i64 overflow in any
    /// sum or percentage computed from it.
    pub const MAX_CENTS: i64 = 1_000_000_000_000;

    pub fn cents(v: &Value) -> Result<i64, String> {
        if v.is_f64() {
            return Err("must be an integer number of cents".into());
        }
        int_in(v, 0, MAX_CENTS)
    }

    pub fn currency(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(s.to_string())
        } else {
            Err("must be a 3-letter lower-case ISO 4217 code such as usd".into())
        }
    }

    /// A non-negative count where JSON `null` elsewhere means unlimited.
    pub fn count(v: &Value) -> Result<u64, String> {
        let n = v.as_u64().ok_or("must be a non-negative integer")?;
        if n > 1_000_000_000_000 {
            return Err("is too large".into());
        }
        Ok(n)
    }

    /// `null` = unlimited, otherwise a count.
    pub fn limit_value(v: &Value) -> Result<Option<u64>, String> {
        if v.is_null() {
            Ok(None)
        } else {
            count(v).map(Some).map_err(|e| format!("{e}, or null for unlimited"))
        }
    }
}
