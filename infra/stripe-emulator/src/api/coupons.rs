//! Coupons: create, retrieve, list, update (`name`, `metadata`).

use super::{list_response, Result};
use crate::discount;
use crate::error::ApiError;
use crate::form::Form;
use crate::objects;
use crate::state::{Coupon, CouponDuration, CouponValue, Store};

/// Stripe's generated coupon ids are 8 characters, e.g. `Z4OV52SU`.
fn new_coupon_id(store: &Store) -> String {
    loop {
        let ulid = ulid::Ulid::new().to_string();
        let id: String = ulid.chars().rev().take(8).collect();
        if !store.coupons.contains(&id) {
            return id;
        }
    }
}

pub fn create(store: &mut Store, form: &Form) -> Result {
    let id = match form.string("id") {
        Some(id) if store.coupons.contains(&id) => {
            return Err(ApiError {
                code: Some("resource_already_exists"),
                ..ApiError::invalid("Coupon already exists.", Some("id".into()))
            })
        }
        Some(id) => id,
        None => new_coupon_id(store),
    };
    let value = match (form.string("percent_off"), form.int("amount_off")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: amount_off, percent_off.",
                Some("percent_off".into()),
            ))
        }
        (Some(percent), None) => {
            let hundredths = discount::parse_percent(&percent).ok_or_else(|| {
                ApiError::invalid(
                    format!(
                        "Invalid percent_off: {percent}. It must be a number above 0 and at most 100, \
                         with at most two decimal places."
                    ),
                    Some("percent_off".into()),
                )
            })?;
            // `currency` only qualifies `amount_off`; with `percent_off` it is ignored.
            CouponValue::PercentOff { hundredths }
        }
        (None, Some(amount)) => {
            if amount <= 0 {
                return Err(ApiError::invalid("amount_off must be a positive integer.", Some("amount_off".into())));
            }
            let currency = form.required("currency")?.to_lowercase();
            CouponValue::AmountOff { amount, currency }
        }
        (None, None) => {
            return Err(ApiError {
                code: Some("parameter_missing"),
                ..ApiError::invalid("You must specify either percent_off or amount_off.", Some("percent_off".into()))
            })
        }
    };
    let duration = match form.str("duration").filter(|d| !d.is_empty()) {
        None => CouponDuration::Once,
        Some(d) => CouponDuration::parse(d)
            .ok_or_else(|| ApiError::invalid(format!("Invalid duration: {d}"), Some("duration".into())))?,
    };
    // Since API version 2025-03-31.basil an amount_off coupon must end.
    if duration == CouponDuration::Forever && matches!(value, CouponValue::AmountOff { .. }) {
        return Err(ApiError::invalid(
            "Coupons with amount_off cannot have duration=forever. Use duration=once or duration=repeating.",
            Some("duration".into()),
        ));
    }
    let duration_in_months = match (duration, form.int("duration_in_months")?) {
        (CouponDuration::Repeating, None) => return Err(ApiError::missing_param("duration_in_months")),
        (CouponDuration::Repeating, Some(months)) => {
            Some(u32::try_from(months).ok().filter(|m| *m >= 1).ok_or_else(|| {
                ApiError::invalid("duration_in_months must be a positive integer.", Some("duration_in_months".into()))
            })?)
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "duration_in_months can only be set when duration is repeating.",
                Some("duration_in_months".into()),
            ))
        }
        (_, None) => None,
    };
    let max_redemptions = form.int("max_redemptions")?;
    if max_redemptions.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid("max_redemptions must be a positive integer.", Some("max_redemptions".into())));
    }
    let now = store.now();
    let redeem_by = form.int("redeem_by")?;
    if redeem_by.is_some_and(|by| by <= now) {
        return Err(ApiError::invalid("redeem_by must be in the future.", Some("redeem_by".into())));
    }
    let coupon = Coupon {
        id,
        created: now,
        name: form.string("name"),
        value,
        duration,
        duration_in_months,
        max_redemptions,
        redeem_by,
        times_redeemed: 0,
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
    };
    let value = objects::coupon(store, &coupon);
    store.coupons.insert(coupon);
    Ok(value)
}

pub fn retrieve(store: &Store, id: &str) -> Result {
    let coupon = store.coupons.get(id).ok_or_else(|| ApiError::no_such("coupon", id))?;
    Ok(objects::coupon(store, coupon))
}

pub fn list(store: &Store, form: &Form) -> Result {
    let rows = store.coupons.iter().rev().collect();
    list_response(store, form, "/v1/coupons", rows, objects::coupon)
}

/// Stripe lets only `name` and `metadata` change after creation.
pub fn update(store: &mut Store, id: &str, form: &Form) -> Result {
    let coupon = store.coupons.get_mut(id).ok_or_else(|| ApiError::no_such("coupon", id))?;
    if form.has("name") {
        coupon.name = form.string("name");
    }
    if let Some(patch) = form.metadata("metadata") {
        patch.apply(&mut coupon.metadata);
    }
    retrieve(store, id)
}
