//! Drives the emulator with the real async-stripe rc.10 client, so every object the emulator
//! serves is parsed by async-stripe, and checks every webhook it sent with
//! `stripe_webhook::Webhook` (signature and event shape).

mod common;

use std::collections::HashMap;

use common::{Harness, SECRET};
use serde_json::json;
use stripe_billing::invoice::{
    CreateInvoice, FinalizeInvoiceInvoice, ListInvoice, PayInvoice, RetrieveInvoice, VoidInvoiceInvoice,
};
use stripe_billing::invoice_item::{CreateInvoiceItem, ListInvoiceItem};
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems, DiscountsDataParam, ListSubscription,
    ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData, ListLineItemsCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::customer::{CreateCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer};
use stripe_product::coupon::{CreateCoupon, ListCoupon, RetrieveCoupon, UpdateCoupon};
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, RetrievePrice,
};
use stripe_product::product::{CreateProduct, ListProduct, RetrieveProduct};
use stripe_shared::{CheckoutSessionMode, CheckoutSessionStatus, CouponDuration, InvoiceStatus, SubscriptionStatus};
use stripe_types::Currency;
use stripe_webhook::{EventObject, Webhook};

fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The proration formula, computed independently of the emulator.
fn prorate(amount: i64, start: i64, end: i64, at: i64) -> i64 {
    let num = i128::from(amount) * i128::from(end - at);
    let den = i128::from(end - start);
    ((2 * num + den) / (2 * den)) as i64
}

#[tokio::test]
async fn async_stripe_parses_every_object_and_event() {
    let h = Harness::start(None).await;
    let client = stripe::ClientBuilder::new("sk_test_x").url(h.base()).build().unwrap();

    // Customers.
    let customer = CreateCustomer::new()
        .email("partner@example.com")
        .name("Partner One")
        .metadata(meta(&[("partner_id", "p1")]))
        .send(&client)
        .await
        .unwrap();
    assert!(customer.id.as_str().starts_with("cus_"));
    assert_eq!(customer.metadata.as_ref().unwrap()["partner_id"], "p1");
    let fetched = RetrieveCustomer::new(customer.id.clone()).send(&client).await.unwrap();
    let RetrieveCustomerReturned::Customer(fetched) = fetched else { panic!("deleted customer") };
    assert_eq!(fetched.email.as_deref(), Some("partner@example.com"));
    let found = ListCustomer::new().email("partner@example.com").send(&client).await.unwrap();
    assert_eq!(found.data.len(), 1);
    let updated =
        UpdateCustomer::new(customer.id.clone()).metadata(meta(&[("tier", "gold")])).send(&client).await.unwrap();
    assert_eq!(updated.metadata.as_ref().unwrap().len(), 2);
    let cus = customer.id.to_string();

    // Catalog.
    let product = CreateProduct::new("Gold").send(&client).await.unwrap();
    let platinum_product = CreateProduct::new("Platinum").send(&client).await.unwrap();
    assert_eq!(RetrieveProduct::new(product.id.clone()).send(&client).await.unwrap().name, "Gold");
    assert_eq!(ListProduct::new().send(&client).await.unwrap().data.len(), 2);
    let monthly = || CreatePriceRecurring::new(CreatePriceRecurringInterval::Month);
    let gold = CreatePrice::new(Currency::USD)
        .product(product.id.as_str())
        .unit_amount(360_000)
        .recurring(monthly())
        .lookup_key("gold_monthly")
        .send(&client)
        .await
        .unwrap();
    let platinum = CreatePrice::new(Currency::USD)
        .product(platinum_product.id.as_str())
        .unit_amount(600_000)
        .recurring(monthly())
        .lookup_key("platinum_monthly")
        .nickname("Platinum monthly")
        .send(&client)
        .await
        .unwrap();
    let by_key = ListPrice::new().lookup_keys(vec!["gold_monthly".to_owned()]).send(&client).await.unwrap();
    assert_eq!(by_key.data.len(), 1);
    assert_eq!(by_key.data[0].id, gold.id);
    assert_eq!(RetrievePrice::new(platinum.id.clone()).send(&client).await.unwrap().unit_amount, Some(600_000));

    // Checkout, completed through the control endpoint.
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(cus.as_str())
        .line_items(vec![CreateCheckoutSessionLineItems {
            price: Some(gold.id.to_string()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        }])
        .success_url("https://tierdesk.example/ok?session={CHECKOUT_SESSION_ID}")
        .cancel_url("https://tierdesk.example/cancel")
        .client_reference_id("p1")
        .subscription_data(CreateCheckoutSessionSubscriptionData {
            metadata: Some(meta(&[("partner_id", "p1")])),
            ..CreateCheckoutSessionSubscriptionData::new()
        })
        .send(&client)
        .await
        .unwrap();
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.url.as_deref(), Some(format!("{}/checkout/{}", h.base(), session.id).as_str()));
    let (status, _) = h.control(&format!("/_emulator/checkout/sessions/{}/complete", session.id), json!({})).await;
    assert_eq!(status, 200);
    let session = RetrieveCheckoutSession::new(session.id.clone()).send(&client).await.unwrap();
    assert_eq!(session.status, Some(CheckoutSessionStatus::Complete));
    let sub_id = session.subscription.as_ref().unwrap().id().clone();
    let sub = RetrieveSubscription::new(sub_id.clone()).send(&client).await.unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.metadata["partner_id"], "p1");
    let expanded = RetrieveSubscription::new(sub_id.clone())
        .expand(vec!["latest_invoice".to_owned(), "customer".to_owned()])
        .send(&client)
        .await
        .unwrap();
    let first_invoice = expanded.latest_invoice.as_ref().and_then(|i| i.as_object()).expect("expanded invoice");
    assert_eq!(first_invoice.billing_reason, Some(stripe_shared::InvoiceBillingReason::SubscriptionCreate));
    assert!(expanded.customer.is_object());
    let item = &sub.items.data[0];
    let (start, end) = (item.current_period_start, item.current_period_end);
    assert!(end > start);
    assert_eq!(
        h.receiver.types(),
        [
            // The metadata update above, as Stripe reports a customer change.
            "customer.updated",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed"
        ]
    );

    // A second subscription, created directly.
    let sub2 = CreateSubscription::new()
        .customer(cus.as_str())
        .items(vec![CreateSubscriptionItems { price: Some(gold.id.to_string()), ..CreateSubscriptionItems::new() }])
        .metadata(meta(&[("partner_id", "p1"), ("seat", "2")]))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(sub2.status, SubscriptionStatus::Active);
    let first =
        RetrieveInvoice::new(sub2.latest_invoice.as_ref().unwrap().id().clone().unwrap()).send(&client).await.unwrap();
    assert_eq!(first.status, Some(InvoiceStatus::Paid));
    assert_eq!(first.amount_paid, 360_000);

    // Upgrade half-way through the period, invoiced at once.
    let at = start + (end - start) / 2;
    let upgraded = UpdateSubscription::new(sub_id.clone())
        .items(vec![UpdateSubscriptionItems {
            id: Some(item.id.to_string()),
            price: Some(platinum.id.to_string()),
            ..UpdateSubscriptionItems::new()
        }])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .proration_date(at)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(upgraded.items.data[0].price.id, platinum.id);
    let proration = RetrieveInvoice::new(upgraded.latest_invoice.as_ref().unwrap().id().clone().unwrap())
        .send(&client)
        .await
        .unwrap();
    let amounts: Vec<i64> = proration.lines.data.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, [-prorate(360_000, start, end, at), prorate(600_000, start, end, at)]);
    assert_eq!(proration.status, Some(InvoiceStatus::Paid));
    assert_eq!(proration.amount_paid, amounts.iter().sum::<i64>());

    // create_prorations leaves pending invoice items; a one-off invoice item joins them.
    UpdateSubscription::new(sub2.id.clone())
        .items(vec![UpdateSubscriptionItems {
            id: Some(sub2.items.data[0].id.to_string()),
            price: Some(platinum.id.to_string()),
            ..UpdateSubscriptionItems::new()
        }])
        .proration_behavior(UpdateSubscriptionProrationBehavior::CreateProrations)
        .send(&client)
        .await
        .unwrap();
    let fee = CreateInvoiceItem::new()
        .customer(cus.as_str())
        .amount(5_000)
        .currency(Currency::USD)
        .description("Onboarding")
        .subscription(sub2.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert!(fee.invoice.is_none());
    let pending = ListInvoiceItem::new().customer(cus.as_str()).pending(true).send(&client).await.unwrap();
    assert_eq!(pending.data.len(), 3);

    // Cancel at period end.
    let canceling = UpdateSubscription::new(sub2.id.clone()).cancel_at_period_end(true).send(&client).await.unwrap();
    assert!(canceling.cancel_at_period_end);
    assert_eq!(canceling.cancel_at, Some(canceling.items.data[0].current_period_end));

    // Everything so far was signed at the system time: the plain construct_event accepts it.
    h.emulator.flush().await;
    for delivery in h.receiver.deliveries() {
        let event = Webhook::construct_event(&delivery.payload, &delivery.signature, SECRET)
            .unwrap_or_else(|e| panic!("{} rejected: {e:?}", delivery.event_type()));
        assert!(!matches!(event.data.object, EventObject::Unknown(_)), "{}", delivery.event_type());
        assert_eq!(event.api_version, Some(stripe_shared::version::VERSION));
    }

    // Renewal of sub2 ends it; renewal of the first one with a declined card leaves an open
    // invoice to pay.
    let (status, _) = h.control(&format!("/_emulator/subscriptions/{}/advance", sub2.id), json!({})).await;
    assert_eq!(status, 200);
    let ended = RetrieveSubscription::new(sub2.id.clone()).send(&client).await.unwrap();
    assert_eq!(ended.status, SubscriptionStatus::Canceled);
    h.control(&format!("/_emulator/customers/{cus}/card"), json!({"fails": true})).await;
    h.control(&format!("/_emulator/subscriptions/{sub_id}/advance"), json!({})).await;
    let past_due = RetrieveSubscription::new(sub_id.clone()).send(&client).await.unwrap();
    assert_eq!(past_due.status, SubscriptionStatus::PastDue);
    let open = ListInvoice::new().customer(cus.as_str()).status(InvoiceStatus::Open).send(&client).await.unwrap();
    assert_eq!(open.data.len(), 1);
    let open_id = open.data[0].id.clone().unwrap();
    let declined = PayInvoice::new(open_id.clone()).send(&client).await.unwrap_err();
    assert!(matches!(declined, stripe::StripeError::Stripe(_, 402)), "{declined:?}");
    h.control(&format!("/_emulator/customers/{cus}/card"), json!({"fails": false})).await;
    let paid = PayInvoice::new(open_id.clone()).send(&client).await.unwrap();
    assert_eq!(paid.status, Some(InvoiceStatus::Paid));
    assert_eq!(paid.attempt_count, 3);
    assert_eq!(
        RetrieveSubscription::new(sub_id.clone()).send(&client).await.unwrap().status,
        SubscriptionStatus::Active
    );

    // A manual invoice: draft → open → void.
    let manual = CreateInvoice::new().customer(cus.as_str()).send(&client).await.unwrap();
    let manual_id = manual.id.clone().unwrap();
    assert_eq!(manual.status, Some(InvoiceStatus::Draft));
    CreateInvoiceItem::new()
        .customer(cus.as_str())
        .invoice(manual_id.as_str())
        .amount(2_500)
        .currency(Currency::USD)
        .send(&client)
        .await
        .unwrap();
    let finalized = FinalizeInvoiceInvoice::new(manual_id.clone()).send(&client).await.unwrap();
    assert!(finalized.number.is_some());
    assert_eq!(finalized.amount_due, 2_500);
    let voided = VoidInvoiceInvoice::new(manual_id.clone()).send(&client).await.unwrap();
    assert_eq!(voided.status, Some(InvoiceStatus::Void));

    // Lists and filters.
    let all = ListInvoice::new().customer(cus.as_str()).limit(100).send(&client).await.unwrap();
    assert_eq!(all.data.len(), 5);
    let of_sub = ListInvoice::new().subscription(sub_id.as_str()).send(&client).await.unwrap();
    assert_eq!(of_sub.data.len(), 3);
    let live = ListSubscription::new().customer(cus.as_str()).send(&client).await.unwrap();
    assert_eq!(live.data.len(), 1);
    let every =
        ListSubscription::new().customer(cus.as_str()).status(ListSubscriptionStatus::All).send(&client).await.unwrap();
    assert_eq!(every.data.len(), 2);

    // Coupons, a discounted checkout and a discounted trial, for another customer.
    let welcome = CreateCoupon::new()
        .id("WELCOME25")
        .percent_off(25.0)
        .duration(CouponDuration::Once)
        .name("Welcome")
        .send(&client)
        .await
        .unwrap();
    assert_eq!((welcome.percent_off, welcome.duration, welcome.valid), (Some(25.0), CouponDuration::Once, true));
    let fifty = CreateCoupon::new()
        .amount_off(5_000)
        .currency(Currency::USD)
        .duration(CouponDuration::Repeating)
        .duration_in_months(3)
        .metadata(meta(&[("campaign", "spring")]))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        (fifty.amount_off, fifty.currency, fifty.duration_in_months),
        (Some(5_000), Some(Currency::USD), Some(3))
    );
    let duplicate = CreateCoupon::new().id("WELCOME25").percent_off(10.0).send(&client).await.unwrap_err();
    assert!(matches!(duplicate, stripe::StripeError::Stripe(_, 400)), "{duplicate:?}");
    UpdateCoupon::new(fifty.id.clone()).name("Fifty off").send(&client).await.unwrap();
    assert_eq!(ListCoupon::new().send(&client).await.unwrap().data.len(), 2);
    let newcomer = CreateCustomer::new().email("newcomer@example.com").send(&client).await.unwrap();
    let discounted = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(newcomer.id.as_str())
        .line_items(vec![CreateCheckoutSessionLineItems {
            price: Some(gold.id.to_string()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        }])
        .discounts(vec![CreateCheckoutSessionDiscounts {
            coupon: Some(welcome.id.to_string()),
            ..CreateCheckoutSessionDiscounts::new()
        }])
        .success_url("https://tierdesk.example/ok")
        .send(&client)
        .await
        .unwrap();
    assert_eq!((discounted.amount_subtotal, discounted.amount_total), (Some(360_000), Some(270_000)));
    assert_eq!(discounted.total_details.as_ref().unwrap().amount_discount, 90_000);
    let lines = ListLineItemsCheckoutSession::new(discounted.id.clone()).send(&client).await.unwrap();
    assert_eq!(lines.data[0].amount_discount, 90_000);
    h.control(&format!("/_emulator/checkout/sessions/{}/complete", discounted.id), json!({})).await;
    let discounted = RetrieveCheckoutSession::new(discounted.id.clone()).send(&client).await.unwrap();
    let applied = discounted.discounts.as_ref().unwrap()[0].coupon.as_ref().unwrap();
    assert_eq!(applied.id(), &welcome.id);
    let discounted_sub = RetrieveSubscription::new(discounted.subscription.as_ref().unwrap().id().clone())
        .expand(vec!["discounts.source.coupon".to_owned(), "latest_invoice".to_owned()])
        .send(&client)
        .await
        .unwrap();
    let discount = discounted_sub.discounts[0].as_object().expect("expanded discount");
    assert_eq!(discount.source.coupon.as_ref().and_then(|c| c.as_object()).unwrap().times_redeemed, 1);
    let invoice = discounted_sub.latest_invoice.as_ref().and_then(|i| i.as_object()).expect("expanded invoice");
    assert_eq!((invoice.subtotal, invoice.total, invoice.amount_due), (360_000, 270_000, 270_000));
    let total_discount = &invoice.total_discount_amounts.as_ref().unwrap()[0];
    assert_eq!((total_discount.amount, total_discount.discount.id()), (90_000, &discount.id));
    assert_eq!(invoice.lines.data[0].discount_amounts.as_ref().unwrap()[0].amount, 90_000);
    let invoice = RetrieveInvoice::new(invoice.id.clone().unwrap())
        .expand(vec!["discounts".to_owned(), "total_discount_amounts.discount".to_owned()])
        .send(&client)
        .await
        .unwrap();
    assert!(invoice.discounts[0].is_object());
    let trialing = CreateSubscription::new()
        .customer(newcomer.id.as_str())
        .items(vec![CreateSubscriptionItems { price: Some(gold.id.to_string()), ..CreateSubscriptionItems::new() }])
        .discounts(vec![DiscountsDataParam { coupon: Some(fifty.id.to_string()), ..DiscountsDataParam::new() }])
        .trial_period_days(7u32)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(trialing.status, SubscriptionStatus::Trialing);
    assert_eq!(trialing.trial_end, trialing.trial_start.map(|start| start + 7 * 86_400));
    assert_eq!(trialing.discounts.len(), 1);
    assert_eq!(RetrieveCoupon::new(fifty.id.clone()).send(&client).await.unwrap().times_redeemed, 1);

    // Immediate cancel.
    let canceled = CancelSubscription::new(sub_id.clone()).send(&client).await.unwrap();
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);

    // Every event, including those signed on the advanced clock, verifies and parses.
    h.emulator.flush().await;
    let events = h.verified_events();
    assert_eq!(events.len(), h.receiver.deliveries().len());
    assert!(events.iter().all(|e| !matches!(e.data.object, EventObject::Unknown(_))));
    let last = events.last().unwrap();
    assert!(matches!(&last.data.object, EventObject::CustomerSubscriptionDeleted(s) if s.id == sub_id));
}

/// A setup-mode session (payment method update): async-stripe parses the session, the
/// SetupIntent and the saved card, and the events that follow its completion.
#[tokio::test]
async fn a_setup_session_saves_a_card_that_becomes_the_default() {
    use stripe_checkout::checkout_session::CreateCheckoutSessionSetupIntentData;
    use stripe_core::customer::UpdateCustomerInvoiceSettings;
    let h = Harness::start(None).await;
    let client = stripe::ClientBuilder::new("sk_test_x").url(h.base()).build().unwrap();
    let customer = CreateCustomer::new().email("card@example.com").send(&client).await.unwrap();
    let mut setup = CreateCheckoutSessionSetupIntentData::new();
    setup.metadata = Some(meta(&[("partner_id", "p1"), ("subscription_id", "sub_x")]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .customer(customer.id.as_str())
        .currency(Currency::USD)
        .setup_intent_data(setup)
        .success_url("http://127.0.0.1/ok")
        .cancel_url("http://127.0.0.1/no")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(session.mode, CheckoutSessionMode::Setup);
    assert!(session.setup_intent.is_some());
    let path = format!("/_emulator/checkout/sessions/{}/complete", session.id.as_str());
    let (status, _) = h.control(&path, json!({"card": {"brand": "mastercard", "last4": "4444"}})).await;
    assert_eq!(status, 200);
    let done = RetrieveCheckoutSession::new(session.id.clone())
        .expand(vec!["setup_intent".to_string()])
        .send(&client)
        .await
        .unwrap();
    assert_eq!(done.status, Some(CheckoutSessionStatus::Complete));
    let intent = done.setup_intent.as_ref().and_then(|i| i.as_object()).expect("expanded");
    assert_eq!(intent.metadata.as_ref().unwrap()["subscription_id"], "sub_x");
    let pm = intent.payment_method.as_ref().unwrap().id().clone();
    let mut settings = UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(pm.as_str().to_string());
    UpdateCustomer::new(customer.id.clone()).invoice_settings(settings).send(&client).await.unwrap();
    let found = RetrieveCustomer::new(customer.id.clone())
        .expand(vec!["invoice_settings.default_payment_method".to_string()])
        .send(&client)
        .await
        .unwrap();
    let RetrieveCustomerReturned::Customer(found) = found else { panic!("deleted") };
    let card = found.invoice_settings.unwrap().default_payment_method.unwrap().into_object().unwrap().card.unwrap();
    assert_eq!((card.brand.as_str(), card.last4.as_str()), ("mastercard", "4444"));
    // Someone else's card cannot be made the default.
    let other = CreateCustomer::new().send(&client).await.unwrap();
    let mut settings = UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(pm.as_str().to_string());
    assert!(UpdateCustomer::new(other.id.clone()).invoice_settings(settings).send(&client).await.is_err());
}
