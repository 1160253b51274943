//! The kinds of subscription transition. They sit below both the state machine
//! (`subscription`) and the analytics that count transitions (`analytics`), so
//! neither has to import the other for the vocabulary.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionEvent {
    Signup,
    Upgrade,
    Downgrade,
    Cancel,
    Reactivate,
    Renewal,
    Expiration,
    PaymentFailureDowngrade,
    /// A trial on a paid tier becomes the paid subscription (seed 001
    /// "trial to paid conversion"): same tier and term, now paying.
    TrialConversion,
    /// A trial ended without converting: the partner is back on the default tier.
    TrialExpired,
}

impl TransitionEvent {
    pub fn is_downgrade(self) -> bool {
        matches!(self, Self::Downgrade | Self::PaymentFailureDowngrade)
    }
}
