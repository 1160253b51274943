//! The outbox as its reader sees it (docs/events.md "Reading the event"): the
//! EventBridge event the `TransitionsPipe` puts on the bus, whose `detail` is the
//! raw DynamoDB Streams record of a transition item's `INSERT`, decoded into the
//! documented `TierTransition`. Tierdesk does not consume its own events; this is
//! the reference decoder the docs point PCR scoring at, and what the tests hold
//! the stored items and the fixture `events/pipe-tier-transition.json` against.

use super::keys;
use crate::domain::quote::QuoteAccepted;
use crate::domain::subscription::TierTransition;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("not a TierTransition event from tierdesk.partners")]
    NotATransition,
    #[error("not a QuoteAccepted event from tierdesk.quotes")]
    NotAQuoteAcceptance,
    #[error("not an INSERT of a transition item: {0}")]
    NotAnInsert(String),
    #[error("the item does not decode: {0}")]
    Decode(#[from] serde_dynamo::Error),
    #[error("the image is not DynamoDB JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Decodes a pipe event (the EventBridge envelope) or a bare stream record (its
/// `detail`) into the transition. Checks what the pipe's filter passes: an
/// `INSERT` whose keys are `PARTNER#…` / `EVENT#…`.
pub fn transition_from_pipe_event(event: &Value) -> Result<TierTransition, OutboxError> {
    let record = match event.get("detail") {
        Some(detail) => {
            if event["source"] != "tierdesk.partners" || event["detail-type"] != "TierTransition" {
                return Err(OutboxError::NotATransition);
            }
            detail
        }
        None => event,
    };
    let name = record["eventName"].as_str().unwrap_or_default();
    let pk = record["dynamodb"]["Keys"]["PK"]["S"].as_str().unwrap_or_default();
    let sk = record["dynamodb"]["Keys"]["SK"]["S"].as_str().unwrap_or_default();
    if name != "INSERT" || !pk.starts_with("PARTNER#") || !sk.starts_with(keys::EVENT_PREFIX) {
        return Err(OutboxError::NotAnInsert(format!("{name} {pk} {sk}")));
    }
    let image: serde_dynamo::Item = serde_json::from_value(record["dynamodb"]["NewImage"].clone())?;
    Ok(serde_dynamo::from_item(image)?)
}

/// Decodes a `QuoteHandoffPipe` event (or its bare stream record) into the CRM
/// hand-off: an `INSERT` whose keys are `QUOTE#…` / `EVENT#…` (docs/events.md
/// "Quote accepted").
pub fn quote_accepted_from_pipe_event(event: &Value) -> Result<QuoteAccepted, OutboxError> {
    let record = match event.get("detail") {
        Some(detail) => {
            if event["source"] != "tierdesk.quotes" || event["detail-type"] != "QuoteAccepted" {
                return Err(OutboxError::NotAQuoteAcceptance);
            }
            detail
        }
        None => event,
    };
    let name = record["eventName"].as_str().unwrap_or_default();
    let pk = record["dynamodb"]["Keys"]["PK"]["S"].as_str().unwrap_or_default();
    let sk = record["dynamodb"]["Keys"]["SK"]["S"].as_str().unwrap_or_default();
    if name != "INSERT" || !pk.starts_with("QUOTE#") || !sk.starts_with(keys::EVENT_PREFIX) {
        return Err(OutboxError::NotAnInsert(format!("{name} {pk} {sk}")));
    }
    let image: serde_dynamo::Item = serde_json::from_value(record["dynamodb"]["NewImage"].clone())?;
    Ok(serde_dynamo::from_item(image)?)
}

/// A stored item in DynamoDB JSON, as a stream record's `NewImage` holds it.
pub fn dynamodb_json(item: &super::Item) -> Result<Value, OutboxError> {
    let item: serde_dynamo::Item = item.clone().into();
    Ok(serde_json::to_value(item)?)
}
