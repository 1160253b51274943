//! The application layer: workflows that combine the domain's rules with the
//! store's reads and writes (applying promotions to a purchase in `redemption`),
//! and the one place where a store outcome becomes a domain error (`refusals`).
//!
//! The layers run one way: `functions/*` and `http` → `app` → `store`, `billing`
//! (the Stripe adapter), `mail` → `domain`. The domain knows nothing of storage; the
//! store speaks in its own words (an item missing, a stale version, a named guard
//! that failed); this layer says what that means; `crate::error` maps every area's
//! error to HTTP once.

pub mod redemption;
mod refusals;

use crate::store::{StoreError, WriteError};

/// What a store refusal means in its area's domain words (`refusals` holds them all).
pub trait Meaning: std::fmt::Debug {
    type Domain;
    fn meaning(self) -> Self::Domain;
}

/// Marks an area's domain error, so a workflow can return `Failed<E>` and use `?`
/// on both its rules (`E`) and the store.
pub trait DomainError {}

/// A workflow's failure: one of its area's rules refused it, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Failed<E> {
    #[error(transparent)]
    Refused(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E: DomainError> From<E> for Failed<E> {
    fn from(e: E) -> Self {
        Self::Refused(e)
    }
}

impl<R, E> From<WriteError<R>> for Failed<E>
where
    R: Meaning<Domain = E>,
{
    fn from(e: WriteError<R>) -> Self {
        match e {
            WriteError::Refused(r) => Self::Refused(r.meaning()),
            WriteError::Store(s) => Self::Store(s),
        }
    }
}

impl<E> From<serde_dynamo::Error> for Failed<E> {
    fn from(e: serde_dynamo::Error) -> Self {
        Self::Store(e.into())
    }
}
