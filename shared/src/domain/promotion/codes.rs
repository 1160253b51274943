//! Promotion codes: a generate request and the drawing of one code.

use super::*;
use crate::domain::validation::{parse, Fields, ValidationError};
use serde_json::Value;

/// A generate request: `{count, prefix?, length?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRequest {
    pub explicit: Vec<String>,
    pub count: u32,
    pub prefix: String,
    pub length: usize,
}

impl CodeRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["codes", "count", "prefix", "length"]);
        let explicit = f.optional("codes", fields::code_list).unwrap_or_default();
        let count =
            f.optional("count", |v| parse::int_in(v, 1, i64::from(MAX_GENERATED_CODES)).map(|n| n as u32)).unwrap_or(0);
        let prefix = f
            .optional("prefix", |v| {
                let s = v.as_str().ok_or("must be a string")?;
                if s.len() <= 12 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Ok(s.to_ascii_uppercase())
                } else {
                    Err("must be at most 12 characters of A-Z, 0-9 or '-'".to_string())
                }
            })
            .unwrap_or_default();
        let length = f.optional("length", |v| parse::int_in(v, 6, 16).map(|n| n as usize)).unwrap_or(8);
        if explicit.is_empty() && count == 0 && f.has("codes") {
            f.fail("codes", "must not be empty");
        }
        if !explicit.is_empty() && count > 0 {
            f.fail("count", "give either codes or count, not both");
        }
        if explicit.is_empty() && count == 0 && !f.has("codes") {
            f.fail("count", "is required when no codes are given");
        }
        if prefix.len() + length > 32 {
            f.fail("prefix", "prefix and length together must be at most 32 characters");
        }
        f.finish()?;
        Ok(Self { explicit, count, prefix, length })
    }
}

/// One code of `length` characters from `CODE_ALPHABET` after `prefix`, drawn from
/// `random` (uniform: the alphabet's 31 letters are picked by rejection sampling).
pub fn generate_code(prefix: &str, length: usize, random: &mut impl FnMut() -> u8) -> String {
    let n = CODE_ALPHABET.len() as u8;
    let limit = u8::MAX - (u8::MAX % n);
    let mut out = String::with_capacity(prefix.len() + length);
    out.push_str(prefix);
    while out.len() < prefix.len() + length {
        let b = random();
        if b < limit {
            out.push(CODE_ALPHABET[usize::from(b % n)] as char);
        }
    }
    out
}
