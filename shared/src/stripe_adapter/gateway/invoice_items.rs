//! Reading back the invoice items Tierdesk created: a Stripe idempotency key is
//! forgotten after about 24 hours, so a step that must create an item once,
//! whatever happens, looks for it by its metadata before creating it again.

use super::{provider, StripeGateway};
use crate::domain::billing::BillingError;
use crate::meter::{MeteredCall, Service};
use std::collections::HashMap;

/// One invoice item of a customer: its id and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceItemFound {
    pub id: String,
    pub metadata: HashMap<String, String>,
}

/// Items per page (Stripe's maximum).
const PAGE: i64 = 100;

impl StripeGateway {
    /// Every invoice item of `customer` (pending or already invoiced), newest
    /// first, whose metadata `key` starts with `prefix`. Stripe lists invoice
    /// items by customer (its Search API does not cover them), so this pages
    /// through the customer's items.
    pub async fn invoice_items_with(
        &self,
        customer: &str,
        key: &str,
        prefix: &str,
    ) -> Result<Vec<InvoiceItemFound>, BillingError> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut list = stripe_billing::invoice_item::ListInvoiceItem::new().customer(customer).limit(PAGE);
            if let Some(last) = &after {
                list = list.starting_after(last.clone());
            }
            let page = list.send(&self.client).metered(Service::Stripe).await.map_err(provider)?;
            for item in &page.data {
                let metadata = item.metadata.clone().unwrap_or_default();
                if metadata.get(key).is_some_and(|v| v.starts_with(prefix)) {
                    found.push(InvoiceItemFound { id: item.id.as_str().to_string(), metadata });
                }
            }
            match page.data.last() {
                Some(last) if page.has_more => after = Some(last.id.as_str().to_string()),
                _ => return Ok(found),
            }
        }
    }
}
