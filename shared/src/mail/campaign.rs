//! A campaign's email (docs/campaigns.md): the rendered subject and body the
//! campaign's content gives, the call to action, and the footer every marketing
//! email carries — why the reader gets it and where to turn it off. Pure.

use super::templates::{escape, RenderedEmail};
use crate::domain::campaign::CallToAction;

/// `body` is plain text (the campaign's content after its tokens); blank lines
/// separate paragraphs. Everything is escaped in the HTML part.
pub fn campaign_email(
    subject: &str,
    body: &str,
    cta: Option<&CallToAction>,
    company: &str,
    preferences_url: &str,
) -> RenderedEmail {
    let why = format!(
        "You get this email because {company} has a Tierdesk subscription. \
         To stop marketing email, turn it off in your portal: {preferences_url}"
    );
    let mut text = format!("{}\n\n", body.trim());
    if let Some(a) = cta {
        text.push_str(&format!("{}: {}\n\n", a.label, a.url));
    }
    text.push_str(&format!("--\n{why}\n"));
    let paragraphs: String = body
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
        .collect();
    let button = cta
        .map(|a| {
            format!(
                "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;background:#334e68;color:#fff;\
                 text-decoration:none;border-radius:4px;\">{}</a></p>",
                escape(&a.url),
                escape(&a.label)
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:Arial,sans-serif;color:#102a43;\">{paragraphs}{button}\
         <p style=\"color:#627d98;font-size:12px;\">You get this email because {} has a Tierdesk subscription. \
         <a href=\"{}\">Turn off marketing email</a>.</p></body></html>",
        escape(company),
        escape(preferences_url)
    );
    RenderedEmail { subject: subject.to_string(), html, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_escaped_in_paragraphs_and_every_email_says_how_to_stop_it() {
        let cta = CallToAction { label: "Upgrade".into(), url: "https://x.test/p?a=1&b=2".into() };
        let e = campaign_email(
            "Hello",
            "Hi <Acme>,\n\nLine one\nline two",
            Some(&cta),
            "Acme & Co",
            "https://x.test/partner-portal",
        );
        assert!(e.html.contains("<p>Hi &lt;Acme&gt;,</p><p>Line one<br>line two</p>"), "{}", e.html);
        assert!(e.html.contains("href=\"https://x.test/p?a=1&amp;b=2\""), "{}", e.html);
        assert!(e.html.contains("Acme &amp; Co") && e.html.contains("Turn off marketing email"), "{}", e.html);
        assert!(e.text.contains("Upgrade: https://x.test/p?a=1&b=2"), "{}", e.text);
        assert!(e.text.contains("turn it off in your portal: https://x.test/partner-portal"), "{}", e.text);
    }
}
