//! The outgoing side of Stripe: every call Tierdesk makes, through async-stripe,
//! each with an idempotency key so a retried request never creates a second
//! customer, session or charge.

use super::config::StripeConfig;
use super::facts::{
    self, ADD_ON_ID_KEY, ADD_ON_KEY_PREFIX, PARTNER_ID_KEY, PRICE_VERSION_KEY, QUOTE_ID_KEY, SCHEDULED_TIER_ID_KEY,
    TIER_ID_KEY,
};
use crate::domain::billing::{
    AddOnPriceSpec, BillingError, InvoiceFacts, PaymentFacts, PriceFacts, PriceSpec, SubscriptionFacts,
};
use crate::domain::money::BillingPeriod;
use crate::meter::{MeteredCall, Service};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};

/// How a plan change is charged (Stripe's `proration_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    /// Invoice and charge the prorated difference now (upgrades).
    ChargeNow,
    /// Credit the unused time on the next invoice (immediate downgrades).
    CreditNext,
    /// No proration: the new price applies from the next period (downgrades at
    /// period end).
    None,
    /// No proration and no tier change: another price version of the same tier,
    /// charged from the next invoice on (price migrations).
    NextInvoice,
}

/// What a promotion changes about a checkout: a Stripe coupon, trial days, and
/// the metadata that lets the webhook record the redemption once paid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckoutOffer {
    pub coupon_id: Option<String>,
    pub trial_days: Option<u32>,
    pub metadata: Vec<(String, String)>,
}

/// A Checkout Session the partner is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: Option<String>,
}

/// A coupon to create in Stripe for a promotion.
#[derive(Debug, Clone, PartialEq)]
pub struct CouponSpec {
    pub id: String,
    pub name: String,
    pub off: CouponOff,
    /// First invoice only (`first_month`), else every invoice.
    pub once: bool,
}

/// Stripe refuses `forever` for amount-off coupons (API 2025-03-31 on), so a
/// recurring fixed discount repeats for this many months instead.
pub const AMOUNT_OFF_MONTHS: i64 = 36;

#[derive(Debug, Clone, PartialEq)]
pub enum CouponOff {
    Percent(f64),
    Amount { cents: i64, currency: String },
}

/// One charge to add to a customer's next invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceItemSpec {
    pub customer: String,
    pub subscription: Option<String>,
    /// Cents, in `currency`.
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub metadata: HashMap<String, String>,
}

#[derive(Clone)]
pub struct StripeGateway {
    client: Client,
    config: Arc<StripeConfig>,
    /// Prices never change once created in Stripe, so they are cached per
    /// process by id, and by the lookup key that found them.
    prices: Arc<Mutex<HashMap<String, PriceFacts>>>,
    by_key: Arc<Mutex<HashMap<String, PriceFacts>>>,
}

fn provider(e: StripeError) -> BillingError {
    // Stripe's message can echo request data; keep the type of failure only.
    let kind = match &e {
        StripeError::Stripe(_, status) => format!("stripe answered {status}"),
        StripeError::JSONDeserialize(_) => "unreadable answer".into(),
        StripeError::ClientError(_) | StripeError::Timeout => "unreachable".into(),
        StripeError::ConfigError(_) => "misconfigured".into(),
    };
    let (status, error_type, code) = log_fields(&e);
    tracing::error!(status, error_type, code, "stripe call failed");
    BillingError::Provider(kind)
}

/// What a log may say of a Stripe error: the HTTP status, Stripe's error `type`
/// and `code` (or the transport failure's kind). Never the message, the `param`
/// or anything else from the answer or the transport error's text: they can
/// echo request data (emails, names, metadata).
pub(crate) fn log_fields(e: &StripeError) -> (u16, &str, &str) {
    match e {
        StripeError::Stripe(api, status) => {
            (*status, api.type_.as_str(), api.code.as_ref().map_or("none", |c| c.as_str()))
        }
        StripeError::JSONDeserialize(_) => (0, "unreadable_answer", "none"),
        StripeError::ClientError(_) => (0, "unreachable", "none"),
        StripeError::Timeout => (0, "timeout", "none"),
        StripeError::ConfigError(_) => (0, "misconfigured", "none"),
    }
}

fn idempotent(key: &str) -> Result<RequestStrategy, BillingError> {
    IdempotencyKey::new(key).map(RequestStrategy::Idempotent).map_err(|e| BillingError::Provider(e.to_string()))
}

impl StripeGateway {
    /// The gateway the environment configures (`StripeConfig::from_env`), at init.
    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self::new(StripeConfig::from_env().await?)?)
    }

    pub fn new(config: StripeConfig) -> Result<Self, BillingError> {
        let mut builder = ClientBuilder::new(config.api_key.clone());
        if let Some(base) = &config.api_base {
            builder = builder.url(base.clone());
        }
        let client = builder.build().map_err(provider)?;
        Ok(Self { client, config: Arc::new(config), prices: Arc::default(), by_key: Arc::default() })
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    pub async fn create_customer(
        &self,
        partner_id: &str,
        company: &str,
        email: &str,
        key: &str,
    ) -> Result<String, BillingError> {
        let customer = stripe_core::customer::CreateCustomer::new()
            .email(email)
            .name(company)
            .metadata(HashMap::from([(PARTNER_ID_KEY.to_string(), partner_id.to_string())]))
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(customer.id.as_str().to_string())
    }

    /// A pending invoice item on the customer's next invoice (usage overage):
    /// `key` makes a retry create nothing new. Returns the item's id.
    pub async fn create_invoice_item(&self, item: &InvoiceItemSpec, key: &str) -> Result<String, BillingError> {
        let currency =
            item.currency.parse::<stripe_types::Currency>().map_err(|_| BillingError::Provider("currency".into()))?;
        let mut create = stripe_billing::invoice_item::CreateInvoiceItem::new()
            .customer(item.customer.clone())
            .amount(item.amount)
            .currency(currency)
            .description(item.description.clone())
            .metadata(item.metadata.clone());
        if let Some(sub) = &item.subscription {
            create = create.subscription(sub.clone());
        }
        let created = create
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(created.id.as_str().to_string())
    }

    /// A price by id, through the cache.
    pub async fn price(&self, price_id: &str) -> Result<PriceFacts, BillingError> {
        if let Some(p) = self.prices.lock().unwrap_or_else(|p| p.into_inner()).get(price_id) {
            return Ok(p.clone());
        }
        let price = stripe_product::price::RetrievePrice::new(price_id)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        let mut facts = facts::price_facts(&price)
            .ok_or_else(|| BillingError::Provider(format!("price {price_id} is not a monthly or yearly price")))?;
        if facts.tier_id.is_none() {
            // A price configured by id names its tier through the configuration.
            facts.tier_id =
                self.config.price_ids.iter().find(|(_, id)| id.as_str() == price_id).map(|((tier, _), _)| tier.clone());
        }
        self.remember(None, &facts);
        Ok(facts)
    }

    fn remember(&self, lookup_key: Option<&str>, facts: &PriceFacts) {
        self.prices.lock().unwrap_or_else(|p| p.into_inner()).insert(facts.price_id.clone(), facts.clone());
        if let Some(key) = lookup_key {
            self.by_key.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), facts.clone());
        }
    }

    /// The active price holding `lookup_key`, if any.
    async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<PriceFacts>, BillingError> {
        let list = stripe_product::price::ListPrice::new()
            .lookup_keys(vec![lookup_key.to_string()])
            .active(true)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(list.data.first().and_then(facts::price_facts))
    }

    /// The Stripe price of one price version of a tier for a period, created on
    /// first use. Every version has its own price (lookup key
    /// `tierdesk_{tier}_v{version}_{period}`), so a catalog price change never
    /// touches what existing subscribers are charged. Found prices are cached per
    /// instance: a version's price never changes once created.
    ///
    /// `STRIPE_PRICE_IDS` (an existing price per tier and period) is used while
    /// its amount and currency are the version's; a later price version gets its
    /// own price like any other.
    pub async fn price_for(&self, spec: &PriceSpec) -> Result<PriceFacts, BillingError> {
        let key = spec.lookup_key();
        if let Some(p) = self.by_key.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let matches = |p: &PriceFacts| {
            p.unit_amount == spec.amount && p.currency.eq_ignore_ascii_case(&spec.currency) && p.period == spec.period
        };
        let versioned = |mut p: PriceFacts| {
            p.tier_id = Some(spec.tier_id.clone());
            p.price_version = Some(spec.price_version);
            p
        };
        if let Some(id) = self.config.price_ids.get(&(spec.tier_id.clone(), spec.period)) {
            let configured = self.price(id).await?;
            if matches(&configured) {
                let found = versioned(configured);
                self.remember(Some(&key), &found);
                return Ok(found);
            }
        }
        if let Some(found) = self.price_by_lookup_key(&key).await? {
            if !matches(&found) {
                // A version's price is immutable; a price under its key at another
                // amount was made by hand and is not charged.
                tracing::error!(lookup_key = key, "the Stripe price under this lookup key has another amount");
                return Err(BillingError::PriceNotConfigured {
                    tier: spec.tier_id.clone(),
                    period: spec.period.as_str(),
                });
            }
            let found = versioned(found);
            self.remember(Some(&key), &found);
            return Ok(found);
        }
        let metadata = HashMap::from([
            (TIER_ID_KEY.to_string(), spec.tier_id.clone()),
            (PRICE_VERSION_KEY.to_string(), spec.price_version.to_string()),
        ]);
        let product = self.ensure_product(&spec.tier_id, &spec.tier_name).await?;
        match self.create_price(&product, spec.amount, &spec.currency, spec.period, &key, metadata).await {
            Ok(created) => {
                let created = versioned(created);
                self.remember(Some(&key), &created);
                Ok(created)
            }
            // Created meanwhile by a concurrent first use (the lookup key is taken): use it.
            Err(e) => match self.price_by_lookup_key(&key).await? {
                Some(found) if matches(&found) => {
                    let found = versioned(found);
                    self.remember(Some(&key), &found);
                    Ok(found)
                }
                _ => Err(e),
            },
        }
    }

    /// The product of a tier (id `tierdesk_{tier}`), created on first use.
    async fn ensure_product(&self, tier_id: &str, tier_name: &str) -> Result<String, BillingError> {
        let metadata = HashMap::from([(TIER_ID_KEY.to_string(), tier_id.to_string())]);
        self.ensure_product_as(&format!("tierdesk_{tier_id}"), &format!("Tierdesk {tier_name}"), metadata).await
    }

    /// The Stripe price of one add-on line (issue 21 §2): the add-on's price
    /// version for `period` at `amount` (the bundle rule may have cut it), lookup
    /// key `tierdesk_addon_{id}_v{version}_{period}` (`_r{cents}` before the period
    /// when cut), on the add-on's product, created on first use and cached.
    pub async fn add_on_price(&self, line: &AddOnPriceSpec) -> Result<PriceFacts, BillingError> {
        let cut = if line.amount == line.list_amount { String::new() } else { format!("_r{}", line.amount) };
        let key =
            format!("{ADD_ON_KEY_PREFIX}{}_v{}{cut}_{}", line.add_on_id, line.price_version, line.period.as_str());
        if let Some(p) = self.by_key.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let matches = |p: &PriceFacts| p.unit_amount == line.amount && p.period == line.period;
        if let Some(found) = self.price_by_lookup_key(&key).await?.filter(matches) {
            self.remember(Some(&key), &found);
            return Ok(found);
        }
        let metadata = HashMap::from([(ADD_ON_ID_KEY.to_string(), line.add_on_id.clone())]);
        let product = self
            .ensure_product_as(&format!("{ADD_ON_KEY_PREFIX}{}", line.add_on_id), &line.name, metadata.clone())
            .await?;
        let created = self.create_price(&product, line.amount, &line.currency, line.period, &key, metadata).await?;
        self.remember(Some(&key), &created);
        Ok(created)
    }

    /// A product by id, created on first use with `name` and `metadata`.
    async fn ensure_product_as(
        &self,
        id: &str,
        name: &str,
        metadata: HashMap<String, String>,
    ) -> Result<String, BillingError> {
        use stripe_product::product::{CreateProduct, RetrieveProduct};
        let id = id.to_string();
        if let Ok(found) = RetrieveProduct::new(id.as_str()).send(&self.client).metered(Service::Stripe).await {
            return Ok(found.id.as_str().to_string());
        }
        let created = CreateProduct::new(name.to_string())
            .id(id.clone())
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&format!("product-{id}"))?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await;
        match created {
            Ok(p) => Ok(p.id.as_str().to_string()),
            Err(e) => match RetrieveProduct::new(id.as_str()).send(&self.client).metered(Service::Stripe).await {
                Ok(found) => Ok(found.id.as_str().to_string()),
                Err(_) => Err(provider(e)),
            },
        }
    }

    /// A recurring price under `lookup_key`, with the idempotency key `price-{lookup_key}`.
    async fn create_price(
        &self,
        product: &str,
        amount: i64,
        currency: &str,
        period: BillingPeriod,
        lookup_key: &str,
        metadata: HashMap<String, String>,
    ) -> Result<PriceFacts, BillingError> {
        use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
        let interval = match period {
            BillingPeriod::Monthly => CreatePriceRecurringInterval::Month,
            BillingPeriod::Yearly => CreatePriceRecurringInterval::Year,
        };
        let currency: stripe_types::Currency =
            currency.parse().map_err(|_| BillingError::Provider(format!("unknown currency {currency}")))?;
        let price = CreatePrice::new(currency)
            .product(product)
            .unit_amount(amount)
            .recurring(CreatePriceRecurring::new(interval))
            .lookup_key(lookup_key)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&format!("price-{lookup_key}"))?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        facts::price_facts(&price).ok_or_else(|| BillingError::Provider("the created price is not recurring".into()))
    }

    /// The Stripe price of an accepted quote: the quoted amount per period, on the
    /// tier's product, made once per quote (lookup key `tierdesk_quote_{quote}_{period}`).
    pub async fn quote_price(&self, quote_id: &str, spec: &PriceSpec) -> Result<PriceFacts, BillingError> {
        let key = format!("tierdesk_quote_{}_{}", quote_id.to_ascii_lowercase(), spec.period.as_str());
        if let Some(p) = self.by_key.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let found = match self.price_by_lookup_key(&key).await? {
            Some(found) => found,
            None => {
                let metadata = HashMap::from([
                    (TIER_ID_KEY.to_string(), spec.tier_id.clone()),
                    (PRICE_VERSION_KEY.to_string(), spec.price_version.to_string()),
                    (QUOTE_ID_KEY.to_string(), quote_id.to_string()),
                ]);
                let product = self.ensure_product(&spec.tier_id, &spec.tier_name).await?;
                match self.create_price(&product, spec.amount, &spec.currency, spec.period, &key, metadata).await {
                    Ok(created) => created,
                    Err(e) => self.price_by_lookup_key(&key).await?.ok_or(e)?,
                }
            }
        };
        let mut found = found;
        found.tier_id = Some(spec.tier_id.clone());
        found.price_version = Some(spec.price_version);
        self.remember(Some(&key), &found);
        Ok(found)
    }

    /// A subscription for `customer` on `price`, created once per `key`. The
    /// first invoice is charged as Stripe's default collection does.
    pub async fn create_subscription(
        &self,
        customer_id: &str,
        partner_id: &str,
        price: &PriceFacts,
        extra: &[(&str, &str)],
        key: &str,
    ) -> Result<SubscriptionFacts, BillingError> {
        use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
        let mut metadata = HashMap::from([(PARTNER_ID_KEY.to_string(), partner_id.to_string())]);
        if let Some(tier) = &price.tier_id {
            metadata.insert(TIER_ID_KEY.to_string(), tier.clone());
        }
        metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(price.price_id.clone());
        item.quantity = Some(1);
        let sub = CreateSubscription::new()
            .customer(customer_id)
            .items(vec![item])
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(facts::subscription_facts(&sub))
    }

    /// The live (not ended) subscription of `customer` that `metadata[key] = value`
    /// names, if any: how a retried step finds what an earlier attempt created
    /// after Stripe forgot its idempotency key.
    pub async fn find_subscription(
        &self,
        customer_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<SubscriptionFacts>, BillingError> {
        let list = stripe_billing::subscription::ListSubscription::new()
            .customer(customer_id)
            .limit(100)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(list
            .data
            .iter()
            .find(|s| s.metadata.get(key).map(String::as_str) == Some(value))
            .map(facts::subscription_facts))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_checkout(
        &self,
        customer_id: &str,
        partner_id: &str,
        price: &PriceFacts,
        add_ons: &[PriceFacts],
        success_url: &str,
        cancel_url: &str,
        offer: &CheckoutOffer,
        key: &str,
    ) -> Result<CheckoutSession, BillingError> {
        use stripe_checkout::checkout_session::{
            CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
            CreateCheckoutSessionSubscriptionData,
        };
        let mut metadata = HashMap::from([(PARTNER_ID_KEY.to_string(), partner_id.to_string())]);
        if let Some(tier) = &price.tier_id {
            metadata.insert(TIER_ID_KEY.to_string(), tier.clone());
        }
        metadata.extend(offer.metadata.iter().cloned());
        let mut line = CreateCheckoutSessionLineItems::new();
        line.price = Some(price.price_id.clone());
        line.quantity = Some(1);
        // The tier's line first: Tierdesk reads the tier from the first item that is
        // not an add-on, whatever the order Stripe keeps.
        let mut lines = vec![line];
        for add_on in add_ons {
            let mut extra = CreateCheckoutSessionLineItems::new();
            extra.price = Some(add_on.price_id.clone());
            extra.quantity = Some(1);
            lines.push(extra);
        }
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(metadata.clone());
        subscription_data.trial_period_days = offer.trial_days;
        let mut session = CreateCheckoutSession::new();
        if let Some(coupon) = &offer.coupon_id {
            let mut discount = CreateCheckoutSessionDiscounts::new();
            discount.coupon = Some(coupon.clone());
            session = session.discounts(vec![discount]);
        }
        let session = session
            .mode(stripe_shared::CheckoutSessionMode::Subscription)
            .customer(customer_id)
            .client_reference_id(partner_id)
            .line_items(lines)
            .metadata(metadata)
            .subscription_data(subscription_data)
            .success_url(success_url)
            .cancel_url(cancel_url)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(CheckoutSession { id: session.id.as_str().to_string(), url: session.url })
    }

    /// The Stripe coupon for a promotion's terms, created on first use. Its id
    /// names the promotion and terms version, so changed terms get a new coupon
    /// and a coupon never changes under a subscription that uses it.
    pub async fn ensure_coupon(&self, coupon: &CouponSpec) -> Result<String, BillingError> {
        use stripe_product::coupon::{CreateCoupon, RetrieveCoupon};
        if let Ok(found) = RetrieveCoupon::new(coupon.id.as_str()).send(&self.client).metered(Service::Stripe).await {
            return Ok(found.id.as_str().to_string());
        }
        use stripe_shared::CouponDuration;
        let mut create = CreateCoupon::new().id(coupon.id.clone()).name(coupon.name.clone());
        create = match (&coupon.off, coupon.once) {
            (_, true) => create.duration(CouponDuration::Once),
            (CouponOff::Percent(_), false) => create.duration(CouponDuration::Forever),
            (CouponOff::Amount { .. }, false) => {
                create.duration(CouponDuration::Repeating).duration_in_months(AMOUNT_OFF_MONTHS)
            }
        };
        create = match coupon.off {
            CouponOff::Percent(p) => create.percent_off(p),
            CouponOff::Amount { cents, ref currency } => create.amount_off(cents).currency(
                currency.parse::<stripe_types::Currency>().map_err(|_| BillingError::Provider("currency".into()))?,
            ),
        };
        match create
            .customize()
            .request_strategy(idempotent(&format!("coupon-{}", coupon.id))?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
        {
            Ok(created) => Ok(created.id.as_str().to_string()),
            // Made meanwhile by a concurrent checkout: use it.
            Err(e) => match RetrieveCoupon::new(coupon.id.as_str()).send(&self.client).metered(Service::Stripe).await {
                Ok(found) => Ok(found.id.as_str().to_string()),
                Err(_) => Err(provider(e)),
            },
        }
    }

    pub async fn subscription(&self, subscription_id: &str) -> Result<SubscriptionFacts, BillingError> {
        let sub = stripe_billing::subscription::RetrieveSubscription::new(subscription_id)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(facts::subscription_facts(&sub))
    }

    /// The subscription with the payment behind it (its latest invoice and card
    /// expanded in the same call): what a history record of a payment-caused
    /// transition carries (`amountPaid`, `paymentMethod`).
    pub async fn subscription_with_payment(
        &self,
        subscription_id: &str,
    ) -> Result<(SubscriptionFacts, PaymentFacts), BillingError> {
        let sub = stripe_billing::subscription::RetrieveSubscription::new(subscription_id)
            .expand(vec!["latest_invoice".to_string(), "default_payment_method".to_string()])
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok((facts::subscription_facts(&sub), facts::subscription_payment(&sub)))
    }

    /// Moves the subscription's item to `price`, charged as `proration` says.
    /// Returns the subscription and the id of the invoice the change produced.
    /// Changes a running subscription's add-on items: `remove` (item ids) go, `add`
    /// (price ids) come, prorated on the next invoice. The tier's item is untouched.
    pub async fn change_add_ons(
        &self,
        subscription_id: &str,
        remove: &[String],
        add: &[String],
        key: &str,
    ) -> Result<SubscriptionFacts, BillingError> {
        use stripe_billing::subscription::{
            UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior as P,
        };
        let mut items = Vec::with_capacity(remove.len() + add.len());
        for id in remove {
            let mut item = UpdateSubscriptionItems::new();
            item.id = Some(id.clone());
            item.deleted = Some(true);
            items.push(item);
        }
        for price in add {
            let mut item = UpdateSubscriptionItems::new();
            item.price = Some(price.clone());
            item.quantity = Some(1);
            items.push(item);
        }
        let sub = UpdateSubscription::new(subscription_id)
            .items(items)
            .proration_behavior(P::CreateProrations)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(facts::subscription_facts(&sub))
    }

    /// The invoice a payment intent paid (`GET /v1/invoice_payments`): how a
    /// dispute, which names only the payment, finds its invoice. `None` when the
    /// payment paid no invoice (nothing of Tierdesk's).
    pub async fn invoice_of_payment_intent(&self, payment_intent: &str) -> Result<Option<String>, BillingError> {
        use stripe_billing::invoice_payment::{
            ListInvoicePayment, ListInvoicePaymentPayment, ListInvoicePaymentPaymentType,
        };
        let mut payment = ListInvoicePaymentPayment::new(ListInvoicePaymentPaymentType::PaymentIntent);
        payment.payment_intent = Some(payment_intent.to_string());
        let list = ListInvoicePayment::new()
            .payment(payment)
            .limit(1)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(list.data.first().and_then(|p| p.invoice.id().as_ref()).map(|id| id.as_str().to_string()))
    }

    pub async fn change_price(
        &self,
        subscription: &SubscriptionFacts,
        price: &PriceFacts,
        proration: Proration,
        key: &str,
    ) -> Result<(SubscriptionFacts, Option<String>), BillingError> {
        use stripe_billing::subscription::{
            UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior as P,
        };
        let item_id =
            subscription.item_id.clone().ok_or_else(|| BillingError::Provider("subscription has no item".into()))?;
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(item_id);
        item.price = Some(price.price_id.clone());
        let behavior = match proration {
            Proration::ChargeNow => P::AlwaysInvoice,
            Proration::CreditNext => P::CreateProrations,
            Proration::None | Proration::NextInvoice => P::None,
        };
        let mut update = UpdateSubscription::new(subscription.subscription_id.as_str())
            .items(vec![item])
            .proration_behavior(behavior);
        if let Some(tier) = &price.tier_id {
            // A change billed from the next period is only scheduled: the webhook
            // must not move the tier when Stripe reports the new price.
            let metadata = match proration {
                Proration::None => HashMap::from([(SCHEDULED_TIER_ID_KEY.to_string(), tier.clone())]),
                _ => HashMap::from([
                    (TIER_ID_KEY.to_string(), tier.clone()),
                    (SCHEDULED_TIER_ID_KEY.to_string(), String::new()),
                ]),
            };
            update = update.metadata(metadata);
        }
        let sub = update
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        let invoice = sub.latest_invoice.as_ref().and_then(|i| i.id().as_ref()).map(|id| id.as_str().to_string());
        Ok((facts::subscription_facts(&sub), invoice))
    }

    pub async fn cancel_at_period_end(
        &self,
        subscription_id: &str,
        key: &str,
    ) -> Result<SubscriptionFacts, BillingError> {
        let sub = stripe_billing::subscription::UpdateSubscription::new(subscription_id)
            .cancel_at_period_end(true)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(facts::subscription_facts(&sub))
    }

    /// Voids every open invoice of the subscription, so nothing is charged after
    /// a cancellation. Returns how many were voided.
    pub async fn void_open_invoices(&self, subscription_id: &str, key: &str) -> Result<u32, BillingError> {
        let open = stripe_billing::invoice::ListInvoice::new()
            .subscription(subscription_id)
            .status(stripe_shared::InvoiceStatus::Open)
            .limit(100)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        let mut voided = 0;
        for invoice in open.data {
            let Some(id) = invoice.id else { continue };
            stripe_billing::invoice::VoidInvoiceInvoice::new(id.clone())
                .customize()
                .request_strategy(idempotent(&format!("{key}-void-{}", id.as_str()))?)
                .send(&self.client)
                .metered(Service::Stripe)
                .await
                .map_err(provider)?;
            voided += 1;
        }
        Ok(voided)
    }

    /// An invoice as Stripe has it now, with its price resolved.
    pub async fn invoice(&self, invoice_id: &str) -> Result<InvoiceFacts, BillingError> {
        let invoice = stripe_billing::invoice::RetrieveInvoice::new(invoice_id)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        self.with_price(&invoice).await
    }

    async fn with_price(&self, invoice: &stripe_shared::Invoice) -> Result<InvoiceFacts, BillingError> {
        let (mut facts, price_ids) = facts::invoice_facts(invoice);
        facts.price = self.tier_price(&price_ids).await.ok().flatten();
        Ok(facts)
    }

    /// The tier's price among an invoice's line prices (in line order): the first
    /// that is not an add-on's. Prices are cached per instance.
    pub async fn tier_price(&self, price_ids: &[String]) -> Result<Option<PriceFacts>, BillingError> {
        for id in price_ids {
            let price = self.price(id).await?;
            if price.add_on_id.is_none() {
                return Ok(Some(price));
            }
        }
        Ok(None)
    }

    /// `POST /v1/invoices/{id}/send`: Stripe emails the invoice to the customer again.
    pub async fn send_invoice(&self, invoice_id: &str, key: &str) -> Result<(), BillingError> {
        stripe_billing::invoice::SendInvoiceInvoice::new(invoice_id)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(())
    }

    /// `POST /v1/invoices/{id}/pay` with `paid_out_of_band=true`: paid outside Stripe.
    pub async fn pay_out_of_band(&self, invoice_id: &str, key: &str) -> Result<InvoiceFacts, BillingError> {
        let invoice = stripe_billing::invoice::PayInvoice::new(invoice_id)
            .paid_out_of_band(true)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        self.with_price(&invoice).await
    }

    /// `POST /v1/invoices/{id}/void`.
    pub async fn void_invoice(&self, invoice_id: &str, key: &str) -> Result<InvoiceFacts, BillingError> {
        let invoice = stripe_billing::invoice::VoidInvoiceInvoice::new(invoice_id)
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        self.with_price(&invoice).await
    }

    /// A credit note of `amount` cents on a paid invoice, all of it refunded to the
    /// payment (`refund_amount`: Stripe refunds the invoice's payment intent).
    pub async fn refund_invoice(
        &self,
        invoice_id: &str,
        amount: i64,
        memo: Option<&str>,
        key: &str,
    ) -> Result<crate::domain::invoice::CreditNoteFacts, BillingError> {
        let mut create = stripe_billing::credit_note::CreateCreditNote::new(invoice_id)
            .amount(amount)
            .refund_amount(amount)
            .metadata(HashMap::from([("source".to_string(), "tierdesk_admin".to_string())]));
        if let Some(memo) = memo {
            create = create.memo(memo);
        }
        let note = create
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok(facts::credit_note_facts(&note))
    }

    /// The amount of an invoice (the proration charged by an upgrade).
    pub async fn invoice_amount(&self, invoice_id: &str) -> Result<(i64, i64), BillingError> {
        let invoice = stripe_billing::invoice::RetrieveInvoice::new(invoice_id)
            .send(&self.client)
            .metered(Service::Stripe)
            .await
            .map_err(provider)?;
        Ok((invoice.amount_due, invoice.amount_paid))
    }

    /// Makes sure Stripe has the price of the tier's current price version for
    /// `period` (setting up a Stripe account, and the local emulator, from the
    /// catalog). The same as the first use at checkout would do.
    pub async fn ensure_price(&self, spec: &PriceSpec) -> Result<PriceFacts, BillingError> {
        self.price_for(spec).await
    }
}

mod invoice_items;
mod payment_methods;
pub use invoice_items::InvoiceItemFound;
pub use payment_methods::{SavedCard, SUBSCRIPTION_ID_KEY};

#[cfg(test)]
mod log_tests {
    use super::*;

    fn api_error(message: &str) -> StripeError {
        let api = stripe_shared::ApiErrors {
            advice_code: None,
            charge: None,
            code: Some("resource_missing".parse().unwrap()),
            decline_code: None,
            doc_url: None,
            message: Some(message.into()),
            network_advice_code: None,
            network_decline_code: None,
            param: Some("customer_email".into()),
            payment_intent: None,
            payment_method: None,
            payment_method_type: None,
            request_log_url: None,
            setup_intent: None,
            source: None,
            type_: "invalid_request_error".parse().unwrap(),
        };
        StripeError::Stripe(Box::new(api), 404)
    }

    #[test]
    fn a_stripe_error_is_logged_by_status_type_and_code_only() {
        let e = api_error("No such customer: 'jane.doe@example.com'");
        assert_eq!(log_fields(&e), (404, "invalid_request_error", "resource_missing"));
        let shown = format!("{:?}", log_fields(&e));
        assert!(!shown.contains("jane.doe") && !shown.contains("customer_email"), "{shown}");
        let transport = StripeError::ClientError(
            "error sending request for url (http://x/v1/customers?email=jane.doe%40example.com)".into(),
        );
        assert_eq!(log_fields(&transport), (0, "unreachable", "none"));
        assert_eq!(
            log_fields(&StripeError::JSONDeserialize("invalid type: string \"jane\"".into())).1,
            "unreadable_answer"
        );
        assert_eq!(log_fields(&StripeError::Timeout).1, "timeout");
    }
}
