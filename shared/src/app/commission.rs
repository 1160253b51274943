//! Commission where invoices change (docs/billing.md "Commissions"): an invoice
//! first paid takes its terms (its rep, its tier's segment, that segment's rate
//! on the day); every write of an invoice record carries the ledger change from
//! the record before to the record after, in the same transaction.

use crate::domain::billing::InvoiceRecord;
use crate::domain::commission::{self, CommissionEntry};
use crate::store::{CommissionStore, Store, StoreError, TierStore};
use chrono::NaiveDate;

/// Fixes `after`'s commission terms when it is first paid (kept from `previous`
/// otherwise), and returns the ledger change of going from `previous` to `after`
/// at `at`. Reads (a GetItem of the tier and a Query of the rates) happen only the
/// first time an invoice is paid.
pub async fn settle(
    store: &Store,
    previous: Option<&InvoiceRecord>,
    after: &mut InvoiceRecord,
    at: &str,
    today: NaiveDate,
) -> Result<Option<CommissionEntry>, StoreError> {
    if after.commission.is_none() {
        after.commission = previous.and_then(|p| p.commission.clone());
    }
    // Terms are fixed only when this write is the payment: an invoice paid before
    // commissions existed earns nothing now, not even on a later refund.
    let first_paid = previous.is_none_or(|p| !p.is_paid()) && after.is_paid();
    if after.commission.is_none() && first_paid && commission::collected(after) > 0 {
        if let Some(rep) = after.sales_rep.clone() {
            if let Some(tier) = store.get_tier(&after.tier).await? {
                let rates = store.commission_rates().await?;
                after.commission = commission::terms_for(Some(&rep), &tier.segment, &rates, today);
            }
        }
    }
    Ok(commission::change(previous, after, at))
}
