//! Stripe's official example objects (`fixtures/`, from stripe/openapi `fixtures3.json`, MIT).
//! Every object the emulator serves starts as a copy of one of these, so fields the emulator
//! does not model still have Stripe's real shape.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

const SOURCES: [(&str, &str); 17] = [
    ("customer", include_str!("../fixtures/customer.json")),
    ("product", include_str!("../fixtures/product.json")),
    ("price", include_str!("../fixtures/price.json")),
    ("checkout.session", include_str!("../fixtures/checkout_session.json")),
    ("item", include_str!("../fixtures/item.json")),
    ("subscription", include_str!("../fixtures/subscription.json")),
    ("subscription_item", include_str!("../fixtures/subscription_item.json")),
    ("invoice", include_str!("../fixtures/invoice.json")),
    ("line_item", include_str!("../fixtures/line_item.json")),
    ("invoiceitem", include_str!("../fixtures/invoiceitem.json")),
    ("event", include_str!("../fixtures/event.json")),
    ("credit_note", include_str!("../fixtures/credit_note.json")),
    ("refund", include_str!("../fixtures/refund.json")),
    ("payment_method", include_str!("../fixtures/payment_method.json")),
    ("setup_intent", include_str!("../fixtures/setup_intent.json")),
    ("dispute", include_str!("../fixtures/dispute.json")),
    ("invoice_payment", include_str!("../fixtures/invoice_payment.json")),
];

fn parsed() -> &'static HashMap<&'static str, Map<String, Value>> {
    static PARSED: OnceLock<HashMap<&'static str, Map<String, Value>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(name, text)| match serde_json::from_str(text) {
                Ok(Value::Object(map)) => (*name, map),
                _ => panic!("fixture {name} is not a JSON object"),
            })
            .collect()
    })
}

/// A fresh copy of the example object for `resource` (its `object` value, e.g. `invoice`).
pub fn fixture(resource: &str) -> Map<String, Value> {
    parsed().get(resource).cloned().unwrap_or_else(|| panic!("no fixture for {resource}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses_and_names_its_object() {
        for (name, _) in SOURCES {
            let object = fixture(name);
            assert_eq!(object.get("object").and_then(Value::as_str), Some(name), "fixture {name}");
        }
    }
}
