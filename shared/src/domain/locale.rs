//! The language conventions a partner's emails are written in (dates), chosen per
//! partner (`Partner::locale`) and applied by the mail templates.

use serde::{Deserialize, Serialize};

/// How dates are written. Amounts read the same in both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Locale {
    /// "March 5, 2027"
    #[default]
    #[serde(rename = "en-US")]
    EnUs,
    /// "5 March 2027"
    #[serde(rename = "en-GB")]
    EnGb,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    /// `en-US` / `en-GB`, case-insensitive, `_` accepted for `-`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().replace('_', "-").to_ascii_lowercase().as_str() {
            "en-us" => Some(Self::EnUs),
            "en-gb" => Some(Self::EnGb),
            _ => None,
        }
    }
}

impl std::str::FromStr for Locale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("unsupported locale {s:?} (en-US or en-GB)"))
    }
}
