//! The billing emails as pure functions: `EmailVars` in, subject + HTML + text out.
//! No I/O, no clock.
//!
//! The template language is small on purpose, a subset of Mustache:
//!
//! - `{{name}}`: the value of a known placeholder. HTML-escaped in the HTML body;
//!   verbatim in the text body and the subject. A placeholder without a value is an
//!   error (`MissingValue`), so a caller that forgets a fact gets an error instead
//!   of an email that reads "expires on .".
//! - `{{#name}}…{{/name}}`: the part is kept only when `name` has a value.
//! - `{{^name}}…{{/name}}`: the part is kept only when `name` has no value.
//! - Any other name is `UnknownPlaceholder`, even inside a part that is skipped,
//!   so a typo in a template fails every render (and the unit tests), not just some.
//!
//! Each kind has a body in `templates/{kind}.html` and `templates/{kind}.txt`,
//! wrapped by `templates/layout.html` / `layout.txt` (header, footer), which hold
//! the body at their `{{content}}` marker.

use crate::domain::money::BillingPeriod;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The emails Tierdesk sends (seed 003 §2.4, §3.4, "3. Email System").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    TierUpgradeConfirmation,
    PaymentReceipt,
    #[serde(rename = "renewal_reminder_30")]
    RenewalReminder30,
    #[serde(rename = "renewal_urgent_7")]
    RenewalUrgent7,
    SubscriptionExpired,
    PaymentFailedFriendly,
    PaymentFailedUrgent,
    PaymentFailedFinal,
    CancellationConfirmation,
    RenewalConfirmation,
}

impl EmailKind {
    pub const ALL: [EmailKind; 10] = [
        Self::TierUpgradeConfirmation,
        Self::PaymentReceipt,
        Self::RenewalReminder30,
        Self::RenewalUrgent7,
        Self::SubscriptionExpired,
        Self::PaymentFailedFriendly,
        Self::PaymentFailedUrgent,
        Self::PaymentFailedFinal,
        Self::CancellationConfirmation,
        Self::RenewalConfirmation,
    ];

    /// The snake_case name: serde name, template file name, log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TierUpgradeConfirmation => "tier_upgrade_confirmation",
            Self::PaymentReceipt => "payment_receipt",
            Self::RenewalReminder30 => "renewal_reminder_30",
            Self::RenewalUrgent7 => "renewal_urgent_7",
            Self::SubscriptionExpired => "subscription_expired",
            Self::PaymentFailedFriendly => "payment_failed_friendly",
            Self::PaymentFailedUrgent => "payment_failed_urgent",
            Self::PaymentFailedFinal => "payment_failed_final",
            Self::CancellationConfirmation => "cancellation_confirmation",
            Self::RenewalConfirmation => "renewal_confirmation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn template(self) -> Template {
        macro_rules! template {
            ($file:literal, $subject:literal) => {
                Template {
                    subject: $subject,
                    html: include_str!(concat!("templates/", $file, ".html")),
                    text: include_str!(concat!("templates/", $file, ".txt")),
                }
            };
        }
        match self {
            Self::TierUpgradeConfirmation => template!("tier_upgrade_confirmation", "Welcome to {{tier_name}}!"),
            Self::PaymentReceipt => template!(
                "payment_receipt",
                "{{#invoice_number}}Your receipt for invoice {{invoice_number}}{{/invoice_number}}\
                 {{^invoice_number}}Your Tierdesk payment receipt{{/invoice_number}}"
            ),
            Self::RenewalReminder30 => {
                template!("renewal_reminder_30", "Your {{tier_name}} subscription expires in {{days_left_text}}")
            }
            Self::RenewalUrgent7 => {
                template!("renewal_urgent_7", "Final reminder: Subscription expires in {{days_left_text}}")
            }
            Self::SubscriptionExpired => {
                template!("subscription_expired", "Your subscription has expired, downgraded to Free tier")
            }
            Self::PaymentFailedFriendly => {
                template!("payment_failed_friendly", "We couldn't process your {{tier_name}} payment")
            }
            Self::PaymentFailedUrgent => {
                template!("payment_failed_urgent", "Action required: your {{tier_name}} payment failed again")
            }
            Self::PaymentFailedFinal => {
                template!("payment_failed_final", "Payment failed: your account has been moved to the Free tier")
            }
            Self::CancellationConfirmation => {
                template!("cancellation_confirmation", "Your subscription has been cancelled")
            }
            Self::RenewalConfirmation => {
                template!("renewal_confirmation", "Thank you! Your subscription has been renewed")
            }
        }
    }
}

impl std::fmt::Display for EmailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::domain::locale::Locale;

/// The facts an email can mention. Every kind uses a subset; see `render`.
/// Empty strings count as "no value".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EmailVars {
    pub company_name: String,
    /// Display name, e.g. "Power Gold".
    pub tier_name: String,
    pub previous_tier_name: Option<String>,
    /// Minor units (cents) of `currency`.
    pub amount: Option<i64>,
    /// ISO code, lowercase as Stripe writes it ("usd").
    pub currency: String,
    pub billing_period: Option<BillingPeriod>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub days_left: Option<i64>,
    pub invoice_number: Option<String>,
    pub invoice_url: Option<String>,
    pub invoice_pdf_url: Option<String>,
    pub attempt_count: Option<u32>,
    pub next_attempt_date: Option<NaiveDate>,
    pub reason: Option<String>,
    pub locale: Locale,
}

impl Default for EmailVars {
    fn default() -> Self {
        Self {
            company_name: String::new(),
            tier_name: String::new(),
            previous_tier_name: None,
            amount: None,
            currency: "usd".into(),
            billing_period: None,
            start_date: None,
            end_date: None,
            days_left: None,
            invoice_number: None,
            invoice_url: None,
            invoice_pdf_url: None,
            attempt_count: None,
            next_attempt_date: None,
            reason: None,
            locale: Locale::EnUs,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template {template}: unknown placeholder {{{{{name}}}}}")]
    UnknownPlaceholder { template: String, name: String },
    #[error("template {template}: no value for {{{{{name}}}}}")]
    MissingValue { template: String, name: String },
    #[error("template {template}: {problem}")]
    Syntax { template: String, problem: String },
}

/// Every placeholder a template may use. Derived from `EmailVars` (formatted for
/// the locale) plus `manage_url` and, in the layout, `subject`.
pub const PLACEHOLDERS: &[&str] = &[
    "company_name",
    "tier_name",
    "previous_tier_name",
    // The amount with its currency: "$3,600.00".
    "amount",
    // The amount with the billing period: "$3,600.00/mo" (the amount alone without a period).
    "price",
    // "Monthly" / "Annual".
    "billing_period",
    "start_date",
    "end_date",
    "days_left",
    // "30 days" / "1 day".
    "days_left_text",
    "invoice_number",
    "invoice_url",
    "invoice_pdf_url",
    "attempt_count",
    "next_attempt_date",
    "reason",
    "manage_url",
    "subject",
];

/// The marker in the layouts where the body goes.
const CONTENT_MARKER: &str = "{{content}}";
const LAYOUT_HTML: &str = include_str!("templates/layout.html");
const LAYOUT_TEXT: &str = include_str!("templates/layout.txt");

struct Template {
    subject: &'static str,
    html: &'static str,
    text: &'static str,
}

/// Renders one email. `manage_url` is where the partner manages the subscription
/// (the call to action of most emails and the footer link).
///
/// URLs (`manage_url`, `invoice_url`, `invoice_pdf_url`) count only when they are
/// `http(s)://`; anything else (`javascript:` …) is treated as absent.
pub fn render(kind: EmailKind, vars: &EmailVars, manage_url: &str) -> Result<RenderedEmail, RenderError> {
    let template = kind.template();
    let name = kind.as_str();
    let mut values = values(vars, manage_url);
    let subject = fill(&format!("{name} subject"), template.subject, &values, Mode::Subject)?;
    values.insert("subject", Some(subject.clone()));

    let html_body = fill(&format!("{name}.html"), template.html, &values, Mode::Html)?;
    let text_body = fill(&format!("{name}.txt"), template.text, &values, Mode::Text)?;
    let html = wrap("layout.html", LAYOUT_HTML, &html_body, &values, Mode::Html)?;
    let text = wrap("layout.txt", LAYOUT_TEXT, &text_body, &values, Mode::Text)?;
    Ok(RenderedEmail { subject, html, text: tidy_text(&text) })
}

pub use crate::domain::money::format_amount;

/// "March 5, 2027" (en-US) or "5 March 2027" (en-GB).
pub fn format_date(date: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::EnUs => date.format("%B %-d, %Y").to_string(),
        Locale::EnGb => date.format("%-d %B %Y").to_string(),
    }
}

type Values = BTreeMap<&'static str, Option<String>>;

fn values(vars: &EmailVars, manage_url: &str) -> Values {
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let opt_text = |s: &Option<String>| s.as_deref().and_then(text);
    let url = |s: &str| text(s).filter(|u| is_web_url(u));
    let date = |d: Option<NaiveDate>| d.map(|d| format_date(d, vars.locale));
    let amount = vars.amount.map(|a| format_amount(a, &vars.currency));
    let price = amount.as_ref().map(|a| match vars.billing_period {
        Some(BillingPeriod::Monthly) => format!("{a}/mo"),
        Some(BillingPeriod::Yearly) => format!("{a}/yr"),
        None => a.clone(),
    });
    let mut values = Values::new();
    for (name, value) in [
        ("company_name", text(&vars.company_name)),
        ("tier_name", text(&vars.tier_name)),
        ("previous_tier_name", opt_text(&vars.previous_tier_name)),
        ("amount", amount),
        ("price", price),
        (
            "billing_period",
            vars.billing_period.map(|p| {
                match p {
                    BillingPeriod::Monthly => "Monthly",
                    BillingPeriod::Yearly => "Annual",
                }
                .to_string()
            }),
        ),
        ("start_date", date(vars.start_date)),
        ("end_date", date(vars.end_date)),
        ("days_left", vars.days_left.map(|d| d.to_string())),
        ("days_left_text", vars.days_left.map(|d| if d == 1 { "1 day".into() } else { format!("{d} days") })),
        ("invoice_number", opt_text(&vars.invoice_number)),
        ("invoice_url", vars.invoice_url.as_deref().and_then(url)),
        ("invoice_pdf_url", vars.invoice_pdf_url.as_deref().and_then(url)),
        ("attempt_count", vars.attempt_count.map(|c| c.to_string())),
        ("next_attempt_date", date(vars.next_attempt_date)),
        ("reason", opt_text(&vars.reason)),
        ("manage_url", url(manage_url)),
        ("subject", None),
    ] {
        values.insert(name, value);
    }
    debug_assert!(PLACEHOLDERS.iter().all(|p| values.contains_key(p)) && values.len() == PLACEHOLDERS.len());
    values
}

fn is_web_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")) && !s.chars().any(char::is_whitespace)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Html,
    Text,
    /// One line: no escaping, control characters become spaces.
    Subject,
}

/// Fills one template. See the module documentation for the syntax.
fn fill(template: &str, source: &str, values: &Values, mode: Mode) -> Result<String, RenderError> {
    let syntax = |problem: String| RenderError::Syntax { template: template.to_string(), problem };
    let mut out = String::with_capacity(source.len() + 512);
    // Open sections: (name, whether its content is kept).
    let mut sections: Vec<(&str, bool)> = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let active = sections.iter().all(|(_, keep)| *keep);
        if active {
            out.push_str(&rest[..start]);
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| syntax("a {{ is never closed".into()))?;
        let tag = after[..end].trim();
        rest = &after[end + 2..];

        let (sigil, name) = match tag.chars().next() {
            Some(c @ ('#' | '^' | '/')) => (Some(c), tag[1..].trim()),
            _ => (None, tag),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(syntax(format!("{{{{{tag}}}}} is not a placeholder")));
        }
        let value = values.get(name).ok_or_else(|| RenderError::UnknownPlaceholder {
            template: template.to_string(),
            name: name.to_string(),
        })?;
        match sigil {
            Some('#') => sections.push((name, value.is_some())),
            Some('^') => sections.push((name, value.is_none())),
            Some(_) => match sections.pop() {
                Some((open, _)) if open == name => {}
                Some((open, _)) => return Err(syntax(format!("{{{{/{name}}}}} closes {{{{#{open}}}}}"))),
                None => return Err(syntax(format!("{{{{/{name}}}}} closes nothing"))),
            },
            None if active => match value {
                Some(v) => push_value(&mut out, v, mode),
                None => {
                    return Err(RenderError::MissingValue { template: template.to_string(), name: name.to_string() })
                }
            },
            None => {}
        }
    }
    if let Some((open, _)) = sections.last() {
        return Err(syntax(format!("{{{{#{open}}}}} is never closed")));
    }
    out.push_str(rest);
    Ok(match mode {
        Mode::Subject => out.split_whitespace().collect::<Vec<_>>().join(" "),
        Mode::Html | Mode::Text => out,
    })
}

/// `value` with the five HTML-significant characters escaped.
/// `value` escaped for HTML text and attribute values.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped(&mut out, value);
    out
}

pub(crate) fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, value: &str, mode: Mode) {
    match mode {
        Mode::Text => out.push_str(value),
        Mode::Subject => out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c })),
        Mode::Html => push_escaped(out, value),
    }
}

/// Renders a layout around an already rendered body (which is not filled again).
fn wrap(template: &str, layout: &str, body: &str, values: &Values, mode: Mode) -> Result<String, RenderError> {
    let (head, tail) = layout.split_once(CONTENT_MARKER).ok_or_else(|| RenderError::Syntax {
        template: template.to_string(),
        problem: format!("the layout has no {CONTENT_MARKER} marker"),
    })?;
    let head = fill(template, head, values, mode)?;
    let tail = fill(template, tail, values, mode)?;
    Ok(format!("{head}{}{tail}", body.trim()))
}

/// Plain text after sections were dropped: no trailing spaces, at most one blank
/// line in a row, one final newline.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGE: &str = "https://app.tierdesk.example/billing";

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn full_vars() -> EmailVars {
        EmailVars {
            company_name: "Acme Roofing".into(),
            tier_name: "Power Gold".into(),
            previous_tier_name: Some("Free Tier".into()),
            amount: Some(360_000),
            currency: "usd".into(),
            billing_period: Some(BillingPeriod::Monthly),
            start_date: Some(d(2026, 3, 5)),
            end_date: Some(d(2027, 3, 5)),
            days_left: Some(30),
            invoice_number: Some("INV-2026-0042".into()),
            invoice_url: Some("https://invoice.stripe.example/i/acct_1/test_42".into()),
            invoice_pdf_url: Some("https://pay.stripe.example/invoice/acct_1/test_42/pdf".into()),
            attempt_count: Some(2),
            next_attempt_date: Some(d(2026, 3, 12)),
            reason: Some("Moving to a different provider".into()),
            locale: Locale::EnUs,
        }
    }

    /// The facts each kind cannot do without.
    fn minimal_vars(kind: EmailKind) -> EmailVars {
        let base = EmailVars { tier_name: "Power Gold".into(), ..EmailVars::default() };
        match kind {
            EmailKind::PaymentReceipt => EmailVars { amount: Some(360_000), ..base },
            EmailKind::RenewalReminder30 | EmailKind::RenewalUrgent7 => {
                EmailVars { end_date: Some(d(2027, 3, 5)), days_left: Some(7), ..base }
            }
            _ => base,
        }
    }

    #[test]
    fn every_kind_renders_with_every_fact() {
        let vars = full_vars();
        for kind in EmailKind::ALL {
            let email = render(kind, &vars, MANAGE).unwrap_or_else(|e| panic!("{kind}: {e}"));
            for (part, body) in [("subject", &email.subject), ("html", &email.html), ("text", &email.text)] {
                assert!(!body.contains("{{") && !body.contains("}}"), "{kind} {part} has a tag left: {body}");
                assert!(!body.trim().is_empty(), "{kind} {part} is empty");
            }
            assert!(email.html.starts_with("<!DOCTYPE html>"), "{kind}");
            assert!(email.html.contains(&format!("<title>{}</title>", email.subject.replace('\'', "&#39;"))), "{kind}");
            assert!(email.html.contains("Acme Roofing"), "{kind} html greets the company");
            assert!(email.text.contains("Acme Roofing"), "{kind} text greets the company");
            assert!(email.html.contains(&format!("href=\"{MANAGE}\"")), "{kind} html links to manage");
            assert!(email.text.contains(MANAGE), "{kind} text links to manage");
            // A real email, not a one-liner.
            assert!(email.text.lines().filter(|l| !l.trim().is_empty()).count() >= 6, "{kind}: {}", email.text);
            assert!(!email.text.contains("\n\n\n"), "{kind} text has stacked blank lines");
            assert!(!email.subject.contains('\n'));
        }
    }

    /// Every opened element is closed in order (void elements aside).
    fn assert_balanced_html(kind: EmailKind, html: &str) {
        let mut open: Vec<String> = Vec::new();
        for piece in html.split('<').skip(1) {
            let tag = piece.split(['>', ' ', '\n']).next().unwrap_or_default().to_ascii_lowercase();
            if tag.starts_with('!') || matches!(tag.as_str(), "meta" | "br" | "img" | "hr") {
                continue;
            }
            match tag.strip_prefix('/') {
                Some(closed) => assert_eq!(open.pop().as_deref(), Some(closed), "{kind}: stray </{closed}>"),
                None => open.push(tag),
            }
        }
        assert!(open.is_empty(), "{kind}: unclosed {open:?}");
    }

    #[test]
    fn every_kind_renders_balanced_html_with_and_without_optional_facts() {
        for kind in EmailKind::ALL {
            assert_balanced_html(kind, &render(kind, &full_vars(), MANAGE).unwrap().html);
            assert_balanced_html(kind, &render(kind, &minimal_vars(kind), MANAGE).unwrap().html);
        }
    }

    #[test]
    fn every_kind_renders_with_only_its_required_facts() {
        for kind in EmailKind::ALL {
            let email = render(kind, &minimal_vars(kind), MANAGE).unwrap_or_else(|e| panic!("{kind} minimal: {e}"));
            assert!(!email.html.contains("{{") && !email.text.contains("{{"), "{kind}");
            assert!(email.text.starts_with("Hello,"), "{kind} falls back to a plain greeting: {}", email.text);
        }
    }

    #[test]
    fn a_missing_required_fact_is_an_error_not_a_gap() {
        let vars = EmailVars { tier_name: "Power Gold".into(), ..EmailVars::default() };
        let err = render(EmailKind::RenewalReminder30, &vars, MANAGE).unwrap_err();
        assert!(matches!(err, RenderError::MissingValue { ref name, .. } if name == "days_left_text"), "{err}");
        let err = render(EmailKind::PaymentReceipt, &vars, MANAGE).unwrap_err();
        assert!(matches!(err, RenderError::MissingValue { ref name, .. } if name == "amount"), "{err}");
        let err = render(EmailKind::TierUpgradeConfirmation, &EmailVars::default(), MANAGE).unwrap_err();
        assert!(matches!(err, RenderError::MissingValue { ref name, .. } if name == "tier_name"), "{err}");
        // No usable manage link (not http/https) is missing too.
        let err = render(EmailKind::CancellationConfirmation, &vars, "javascript:alert(1)").unwrap_err();
        assert!(matches!(err, RenderError::MissingValue { ref name, .. } if name == "manage_url"), "{err}");
    }

    #[test]
    fn subjects_follow_the_seed() {
        let mut vars = full_vars();
        let subject = |kind, vars: &EmailVars| render(kind, vars, MANAGE).unwrap().subject;
        assert_eq!(subject(EmailKind::RenewalReminder30, &vars), "Your Power Gold subscription expires in 30 days");
        vars.days_left = Some(7);
        assert_eq!(subject(EmailKind::RenewalUrgent7, &vars), "Final reminder: Subscription expires in 7 days");
        vars.days_left = Some(1);
        assert_eq!(subject(EmailKind::RenewalUrgent7, &vars), "Final reminder: Subscription expires in 1 day");
        assert_eq!(
            subject(EmailKind::SubscriptionExpired, &vars),
            "Your subscription has expired, downgraded to Free tier"
        );
        assert_eq!(subject(EmailKind::RenewalConfirmation, &vars), "Thank you! Your subscription has been renewed");
        assert_eq!(subject(EmailKind::CancellationConfirmation, &vars), "Your subscription has been cancelled");
        assert_eq!(subject(EmailKind::TierUpgradeConfirmation, &vars), "Welcome to Power Gold!");
        assert_eq!(subject(EmailKind::PaymentReceipt, &vars), "Your receipt for invoice INV-2026-0042");
        vars.invoice_number = None;
        assert_eq!(subject(EmailKind::PaymentReceipt, &vars), "Your Tierdesk payment receipt");
        assert!(subject(EmailKind::PaymentFailedFinal, &vars).contains("Free tier"));
    }

    #[test]
    fn payment_failure_emails_escalate() {
        let vars = full_vars();
        let friendly = render(EmailKind::PaymentFailedFriendly, &vars, MANAGE).unwrap();
        let urgent = render(EmailKind::PaymentFailedUrgent, &vars, MANAGE).unwrap();
        let final_ = render(EmailKind::PaymentFailedFinal, &vars, MANAGE).unwrap();
        assert!(friendly.text.contains("We'll try again automatically on March 12, 2026"), "{}", friendly.text);
        assert!(!friendly.subject.to_lowercase().contains("action required"));
        assert!(urgent.subject.starts_with("Action required"));
        assert!(urgent.text.contains("moved to the Free tier"), "{}", urgent.text);
        assert!(final_.text.contains("has been moved to the Free tier"), "{}", final_.text);
        assert!(final_.text.contains("after 2 attempts"), "{}", final_.text);
    }

    #[test]
    fn html_escapes_values_and_text_keeps_them() {
        let vars = EmailVars {
            company_name: "<script>alert('x')</script> & Sons".into(),
            reason: Some("\"too expensive\"".into()),
            ..full_vars()
        };
        let email = render(EmailKind::CancellationConfirmation, &vars, MANAGE).unwrap();
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Sons"), "{}", email.html);
        assert!(email.html.contains("&quot;too expensive&quot;"));
        assert!(email.text.contains("<script>alert('x')</script> & Sons"));
        assert!(email.text.contains("\"too expensive\""));
    }

    #[test]
    fn subject_values_cannot_break_the_line() {
        let vars = EmailVars { tier_name: "Gold\r\nBcc: someone@example.com".into(), ..full_vars() };
        let email = render(EmailKind::TierUpgradeConfirmation, &vars, MANAGE).unwrap();
        assert_eq!(email.subject, "Welcome to Gold Bcc: someone@example.com!");
    }

    #[test]
    fn unsafe_urls_are_left_out() {
        let vars = EmailVars { invoice_url: Some("javascript:alert(1)".into()), ..full_vars() };
        let email = render(EmailKind::PaymentReceipt, &vars, MANAGE).unwrap();
        assert!(!email.html.contains("javascript:"));
        assert!(email.html.contains("pay.stripe.example"), "the PDF link is still there");
    }

    #[test]
    fn amounts_format_from_minor_units() {
        assert_eq!(format_amount(360_000, "usd"), "$3,600.00");
        assert_eq!(format_amount(360_000, "USD"), "$3,600.00");
        assert_eq!(format_amount(360_000, ""), "$3,600.00");
        assert_eq!(format_amount(1_250, "eur"), "€12.50");
        assert_eq!(format_amount(99, "gbp"), "£0.99");
        assert_eq!(format_amount(5, "usd"), "$0.05");
        assert_eq!(format_amount(0, "usd"), "$0.00");
        assert_eq!(format_amount(-2_000, "usd"), "-$20.00");
        assert_eq!(format_amount(-1, "usd"), "-$0.01");
        assert_eq!(format_amount(500_000, "jpy"), "¥500,000");
        assert_eq!(format_amount(1_000, "krw"), "₩1,000");
        assert_eq!(format_amount(0, "jpy"), "¥0");
        assert_eq!(format_amount(360_000, "chf"), "3,600.00 CHF");
        assert_eq!(format_amount(-360_000, "chf"), "-3,600.00 CHF");
        assert_eq!(format_amount(1_500, "clp"), "1,500 CLP");
        assert_eq!(format_amount(12_345, "kwd"), "12.345 KWD");
        assert_eq!(format_amount(100_000_000_000, "usd"), "$1,000,000,000.00");
        assert_eq!(format_amount(i64::MIN, "usd"), "-$92,233,720,368,547,758.08");
    }

    #[test]
    fn prices_carry_the_billing_period() {
        let mut vars = full_vars();
        let text = |vars: &EmailVars| render(EmailKind::TierUpgradeConfirmation, vars, MANAGE).unwrap().text;
        assert!(text(&vars).contains("$3,600.00/mo"));
        vars.billing_period = Some(BillingPeriod::Yearly);
        vars.amount = Some(4_320_000);
        assert!(text(&vars).contains("$43,200.00/yr"));
        vars.billing_period = None;
        assert!(text(&vars).contains("$43,200.00"));
        assert!(!text(&vars).contains("$43,200.00/"));
    }

    #[test]
    fn dates_follow_the_locale() {
        assert_eq!(format_date(d(2027, 3, 5), Locale::EnUs), "March 5, 2027");
        assert_eq!(format_date(d(2027, 3, 5), Locale::EnGb), "5 March 2027");
        assert_eq!(format_date(d(2026, 12, 31), Locale::EnGb), "31 December 2026");
        let us = render(EmailKind::RenewalReminder30, &full_vars(), MANAGE).unwrap();
        assert!(us.text.contains("March 5, 2027"), "{}", us.text);
        let gb =
            render(EmailKind::RenewalReminder30, &EmailVars { locale: Locale::EnGb, ..full_vars() }, MANAGE).unwrap();
        assert!(gb.text.contains("5 March 2027"), "{}", gb.text);
        assert!(!gb.text.contains("March 5, 2027"));
    }

    #[test]
    fn locales_parse() {
        assert_eq!(Locale::parse("en-US"), Some(Locale::EnUs));
        assert_eq!(Locale::parse("en-GB"), Some(Locale::EnGb));
        assert_eq!(Locale::parse("en_gb"), Some(Locale::EnGb));
        assert_eq!(Locale::parse("fr-FR"), None);
        assert_eq!("en-GB".parse::<Locale>(), Ok(Locale::EnGb));
        assert_eq!(serde_json::to_value(Locale::EnGb).unwrap(), serde_json::json!("en-GB"));
        assert_eq!(Locale::default(), Locale::EnUs);
    }

    #[test]
    fn kinds_have_stable_names() {
        for kind in EmailKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
            assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EmailKind::RenewalReminder30.as_str(), "renewal_reminder_30");
        assert_eq!(EmailKind::RenewalUrgent7.as_str(), "renewal_urgent_7");
        let back: EmailKind = serde_json::from_str("\"renewal_urgent_7\"").unwrap();
        assert_eq!(back, EmailKind::RenewalUrgent7);
    }

    #[test]
    fn vars_default_to_usd_and_deserialize_camel_case() {
        assert_eq!(EmailVars::default().currency, "usd");
        let vars: EmailVars =
            serde_json::from_value(serde_json::json!({"tierName": "Power Gold", "daysLeft": 30, "locale": "en-GB"}))
                .unwrap();
        assert_eq!(vars.tier_name, "Power Gold");
        assert_eq!(vars.days_left, Some(30));
        assert_eq!(vars.locale, Locale::EnGb);
        assert_eq!(vars.currency, "usd");
    }

    fn fill_text(source: &str) -> Result<String, RenderError> {
        fill("test", source, &values(&full_vars(), MANAGE), Mode::Text)
    }

    #[test]
    fn unknown_placeholders_are_errors_even_when_skipped() {
        let err = fill_text("Hello {{partner_name}}").unwrap_err();
        assert_eq!(err, RenderError::UnknownPlaceholder { template: "test".into(), name: "partner_name".into() });
        assert!(err.to_string().contains("{{partner_name}}"), "{err}");
        // Inside a section that is not rendered, still an error.
        let err = fill_text("{{^tier_name}}{{nope}}{{/tier_name}}").unwrap_err();
        assert!(matches!(err, RenderError::UnknownPlaceholder { ref name, .. } if name == "nope"));
        assert!(matches!(fill_text("{{#nope}}x{{/nope}}"), Err(RenderError::UnknownPlaceholder { .. })));
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in ["{{tier_name", "{{#tier_name}}x", "x{{/tier_name}}", "{{#tier_name}}{{/reason}}", "{{}}", "{{a b}}"]
        {
            assert!(matches!(fill_text(bad), Err(RenderError::Syntax { .. })), "{bad}");
        }
    }

    #[test]
    fn sections_keep_or_drop_their_content() {
        assert_eq!(fill_text("a{{#tier_name}}[{{tier_name}}]{{/tier_name}}b").unwrap(), "a[Power Gold]b");
        assert_eq!(fill_text("a{{^tier_name}}none{{/tier_name}}b").unwrap(), "ab");
        let vars = EmailVars::default();
        let out =
            fill("t", "{{#reason}}{{reason}}{{/reason}}{{^reason}}none{{/reason}}", &values(&vars, MANAGE), Mode::Text);
        assert_eq!(out.unwrap(), "none");
        // A missing value inside a dropped section is fine.
        let out = fill("t", "{{#amount}}{{amount}} {{invoice_url}}{{/amount}}", &values(&vars, MANAGE), Mode::Text);
        assert_eq!(out.unwrap(), "");
        // Whitespace and blank strings count as no value.
        let vars = EmailVars { company_name: "  ".into(), reason: Some(String::new()), ..EmailVars::default() };
        let out =
            fill("t", "{{^company_name}}x{{/company_name}}{{^reason}}y{{/reason}}", &values(&vars, MANAGE), Mode::Text);
        assert_eq!(out.unwrap(), "xy");
    }

    #[test]
    fn every_template_uses_only_known_placeholders() {
        // `render` already proves it for used parts; this reads every tag of every file.
        for kind in EmailKind::ALL {
            let t = kind.template();
            for source in [t.subject, t.html, t.text] {
                for tag in source.split("{{").skip(1) {
                    let tag = tag.split("}}").next().unwrap().trim_start_matches(['#', '^', '/']);
                    assert!(PLACEHOLDERS.contains(&tag), "{kind}: unknown tag {tag}");
                }
            }
        }
    }
}
