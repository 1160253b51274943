// The partner portal (issue 23 §2; seed 003 §3.3, seed 001's billing dashboard): the
// partner's own subscription, the four-step upgrade, downgrade and cancel at the
// period end, invoices, the card on file, and usage against the tier's limits. Every
// call is the partner's own (the API takes the partner from the token); another
// partner's id in the path is "not found", as the API answers.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, idempotencyKey as key, ok, type Schemas } from "../api/client";
import { currentSession } from "../auth";
import { ChartView, PALETTE, preloadCharts } from "../chart";
import { formatDate, formatMoney, formatMonth } from "../format";
import { limitLabel } from "../limits";
import {
  cancelledTermRunning,
  hasRunningSubscription,
  keptPrice,
  paymentNotice,
  planChoices,
  portalPartnerId,
  priceOf,
  returnUrls,
  usageShare,
  yearlySaving,
  type CatalogTier,
  type Period,
  type Subscription,
} from "../portal";
import { navigate, useLocation } from "../router";
import { publicApi } from "../api/public";
import { PENDING_CONVERSION_KEY, planFromQuery, readPendingConversion, type ChosenPlan } from "../storefront/rules";
import { Badge, Card, ErrorBanner, Field, Loading, PagedTable, Section, fieldError, useAction, useAsync, usePager } from "../ui";

const PERIOD_WORD: Record<Period, string> = { monthly: "month", yearly: "year" };
// The card shown before leaving for Stripe's card page, to tell when the new one is in.
const CARD_BEFORE_KEY = "tierdesk.portal.cardBefore";

function cardText(s: Subscription): string {
  return s.paymentMethod ? `${s.paymentMethod.brand} •••• ${s.paymentMethod.last4}` : "";
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

export function PortalScreen({ sub }: { sub: string }) {
  const session = currentSession();
  const own = session?.partnerId ?? "";
  const asked = portalPartnerId(sub);
  if (asked !== null && asked !== own) {
    return (
      <div class="card notice" data-testid="not-found" role="alert">
        <h1>Not found</h1>
        <p>There is no account here for you.</p>
      </div>
    );
  }
  return <Portal partnerId={own} />;
}

function Portal({ partnerId }: { partnerId: string }) {
  const { query } = useLocation();
  const fromCheckout = query.get("checkout");
  const fromCard = query.get("card");
  const returned = fromCheckout ?? fromCard;
  // Charts come with the usage section: fetch Chart.js beside the API calls.
  useEffect(() => void preloadCharts().catch(() => undefined), []);
  const subscription = useAsync(() => ok(api.GET("/api/billing/subscription")), []);
  const catalog = useAsync(
    () => ok(api.GET("/api/tiers", { params: { query: { limit: 100 } } })).then((l) => l.items),
    [],
  );
  // Back from Stripe's hosted page: the webhook moves the partner (or records the
  // card), usually within a second or two. Read again until it has, for at most
  // 15 s, then say that Stripe's confirmation is still on its way.
  const [waiting, setWaiting] = useState<"no" | "yes" | "late">(returned === "done" ? "yes" : "no");
  useEffect(() => {
    if (waiting !== "yes") return;
    let tries = 0;
    const timer = setInterval(() => {
      tries += 1;
      subscription.reload();
      if (tries >= 15) setWaiting("late");
    }, 1000);
    return () => clearInterval(timer);
  }, [waiting]);
  const s = subscription.data;
  useEffect(() => {
    if (waiting === "no" || !s) return;
    const settled = fromCheckout
      ? hasRunningSubscription(s)
      : !!s.paymentMethod && cardText(s) !== (sessionStorage.getItem(CARD_BEFORE_KEY) ?? "");
    if (settled) {
      setWaiting("no");
      sessionStorage.removeItem(CARD_BEFORE_KEY);
      if (fromCheckout) reportConversion(s);
      navigate("/partner-portal", true);
    }
  }, [s, waiting]);
  // Usage, features and invoices follow the subscription: read them again whenever
  // it moves (a payment, an upgrade, a scheduled change, a cancellation).
  // Refresh reads everything again (an invoice can arrive by webhook after the change).
  const [tick, setTick] = useState(0);
  const refreshAll = () => {
    setTick((t) => t + 1);
    subscription.reload();
  };
  const seen = s
    ? [tick, s.tierId, s.status, s.lastPaymentDate, s.totalPaid, s.scheduledChange?.tierId, s.cancellationDate].join("|")
    : null;
  // The first subscription read is the state the sections' first reads already
  // match: only a later change reads them again (the first render makes each call once).
  const first = useRef<string | null>(null);
  if (first.current === null && seen !== null) first.current = seen;
  const version = seen === null || seen === first.current ? "" : seen;

  const tiers = catalog.data ?? [];
  const current = s ? tiers.find((t) => t.tierId === s.tierId) : undefined;
  // A plan chosen on the pricing page (/pricing hands it over in the address).
  const plan = planFromQuery(query);
  const nameOf = (tierId: string) => tiers.find((t) => t.tierId === tierId)?.name ?? tierId;
  return (
    <div data-testid="partner-portal">
      <div class="page-head">
        <h1>Your subscription</h1>
        <span class="muted">
          Account <code>{partnerId}</code>
        </span>
      </div>
      {returned === "cancelled" && (
        <div class="banner info" role="status">
          Nothing was charged: you left Stripe's page before finishing.
        </div>
      )}
      {waiting === "yes" && (
        <div class="banner info" role="status" data-testid="portal-waiting">
          {fromCheckout
            ? "Payment received. Stripe is confirming it; this page updates by itself."
            : "Card saved. Stripe is confirming it; this page updates by itself."}
        </div>
      )}
      {waiting === "late" && (
        <div class="banner warn" role="status" data-testid="portal-late">
          Stripe has not confirmed yet. Please do not pay again: use Refresh in a minute, or contact us if it does not
          change.
        </div>
      )}
      <ErrorBanner error={subscription.error ?? catalog.error} />
      {!s || !catalog.data ? (
        <Loading what="Loading your subscription" />
      ) : (
        <>
          <Overview s={s} tier={current} nameOf={nameOf} onRefresh={refreshAll} />
          {plan && hasRunningSubscription(s) && (
            <p class="banner info" data-testid="plan-already-subscribed">
              You already have a plan. To move to {nameOf(plan.tierId)}, use the upgrade or downgrade below.
            </p>
          )}
          <Plans s={s} catalog={tiers} current={current} nameOf={nameOf} onChanged={subscription.reload} plan={plan} />
        </>
      )}
      <Usage version={version} />
      <Invoices version={version} />
    </div>
  );
}

/**
 * Reports the conversion of the pricing experiment the storefront priced this
 * purchase under, once: the experiments API counts a participant's conversion once,
 * and the pending record is removed as it is sent.
 */
function reportConversion(s: Subscription): void {
  let pending: ReturnType<typeof readPendingConversion>;
  try {
    pending = readPendingConversion(localStorage.getItem(PENDING_CONVERSION_KEY));
    localStorage.removeItem(PENDING_CONVERSION_KEY);
  } catch {
    return; // storage blocked: nothing was kept to report
  }
  if (!pending || pending.tierId !== s.tierId) return;
  const body: Schemas["TrackRequest"] = { userId: pending.visitor, metric: "conversion", value: s.pricePerPeriod };
  publicApi
    .POST("/api/experiments/{experimentId}/track", { params: { path: { experimentId: pending.experimentId } }, body })
    .catch(() => undefined);
}

function Overview(props: {
  s: Subscription;
  tier: CatalogTier | undefined;
  nameOf: (tierId: string) => string;
  onRefresh: () => void;
}) {
  const { s, tier, nameOf, onRefresh } = props;
  const kept = keptPrice(s, tier);
  const notice = paymentNotice(s);
  const card = useAction(async () => {
    const urls = returnUrls(window.location.origin, "card");
    sessionStorage.setItem(CARD_BEFORE_KEY, cardText(s));
    const session = await ok(
      api.POST("/api/billing/payment-method", { params: { header: { "Idempotency-Key": key() } }, body: urls }),
    );
    if (session.url) window.location.assign(session.url);
  });
  const running = hasRunningSubscription(s);
  const endsWithoutRenewal = s.status === "cancelled" && s.subscriptionEndDate;
  return (
    <Section title="Plan" id="plan-title">
      <div class="cards" data-testid="subscription-cards">
        <Card
          testid="current-tier"
          title="Tier"
          value={tier?.name ?? s.tierId}
          sub={<Badge value={s.status} />}
        />
        <Card
          testid="current-price"
          title="Price"
          value={s.billingPeriod ? formatMoney(s.pricePerPeriod, s.currency) : "Free"}
          sub={
            s.billingPeriod
              ? `per ${PERIOD_WORD[s.billingPeriod]}${addOnsTotal(s) > 0 ? `, plus ${formatMoney(addOnsTotal(s), s.currency)} of add-ons` : ""}`
              : undefined
          }
        />
        <Card
          testid="renewal"
          title={endsWithoutRenewal ? "Ends on" : "Renews on"}
          value={formatDate(s.subscriptionEndDate)}
          sub={running ? (s.autoRenewal ? "Renews automatically" : "Does not renew automatically") : undefined}
        />
        <Card
          testid="card-on-file"
          title="Card"
          value={cardText(s) || "None on file"}
          sub={
            <button type="button" class="secondary small" disabled={card.busy} onClick={() => void card.go()}>
              {s.paymentMethod ? "Update card" : "Add a card"}
            </button>
          }
        />
      </div>
      {kept && (
        <p class="banner info" data-testid="kept-price">
          You keep the price you signed up at: {formatMoney(kept.paying, s.currency)} per{" "}
          {PERIOD_WORD[s.billingPeriod ?? "monthly"]}
          {tier?.grandfatheredUntil && typeof s.priceVersion === "number" && typeof tier.priceVersion === "number" && s.priceVersion < tier.priceVersion
            ? ` until ${formatDate(tier.grandfatheredUntil)}; from your first invoice after that, the current price applies.`
            : "."}{" "}
          New customers pay {formatMoney(kept.today, s.currency)}.
        </p>
      )}
      {notice && (
        <p class={`banner ${notice.level}`} role="alert" data-testid="payment-notice">
          {notice.text}
        </p>
      )}
      {s.scheduledChange && (
        <p class="banner info" data-testid="scheduled-change">
          Your plan moves to <strong>{nameOf(s.scheduledChange.tierId)}</strong> ({s.scheduledChange.billingPeriod}) on{" "}
          {formatDate(s.scheduledChange.effectiveDate)}. Until then you keep everything you have now.
        </p>
      )}
      {endsWithoutRenewal && (
        <p class="banner warn" data-testid="cancelled-notice">
          Cancelled: you keep {tier?.name ?? s.tierId} until {formatDate(s.subscriptionEndDate)}, then move to the free
          tier.
        </p>
      )}
      <ErrorBanner error={card.error} />
      {s.lastPaymentDate && (
        <p class="muted">
          Last payment {formatMoney(s.lastPaymentAmount, s.currency)} on {formatDate(s.lastPaymentDate)}; paid in total{" "}
          {formatMoney(s.totalPaid, s.currency)}.
        </p>
      )}
      <button type="button" class="secondary small" onClick={onRefresh}>
        Refresh
      </button>
    </Section>
  );
}

type Step = { kind: "choose" } | { kind: "compare"; to: CatalogTier } | { kind: "proration"; to: CatalogTier };

function Plans(props: {
  s: Subscription;
  catalog: CatalogTier[];
  current: CatalogTier | undefined;
  nameOf: (tierId: string) => string;
  onChanged: () => void;
  plan: ChosenPlan | null;
}) {
  const { s, catalog, current } = props;
  if (cancelledTermRunning(s, today())) {
    return (
      <Section title="Choose a plan" id="subscribe-title">
        <p class="muted" data-testid="choose-after-term">
          Your cancelled plan runs until {formatDate(s.subscriptionEndDate)}. You can choose a new plan from then on
          without paying twice for the same days.
        </p>
      </Section>
    );
  }
  if (!hasRunningSubscription(s)) return <Subscribe catalog={catalog} s={s} plan={props.plan} />;
  return (
    <>
      <Upgrade {...props} />
      <Downgrade {...props} />
      {s.status !== "cancelled" && current && <AddOns s={s} tier={current} onChanged={props.onChanged} />}
      {s.status !== "cancelled" && current && <Cancel s={s} current={current} onChanged={props.onChanged} />}
    </>
  );
}

function TierChoice(props: { tiers: CatalogTier[]; period: Period; currency: string; onPick: (t: CatalogTier) => void; action: string }) {
  if (props.tiers.length === 0) return <p class="muted">No tier to move to in this direction.</p>;
  return (
    <div class="cards" data-testid={`${props.action.toLowerCase()}-choices`}>
      {props.tiers.map((t) => (
        <div class="card stat" key={t.tierId} data-tier={t.tierId}>
          <div class="stat-title">
            {t.name} {t.popular && <span class="badge badge-active">popular</span>}
          </div>
          <div class="stat-value">{formatMoney(priceOf(t, props.period), t.currency)}</div>
          <div class="stat-sub">
            per {PERIOD_WORD[props.period]}
            {props.period === "yearly" && yearlySaving(t) > 0 && ` (saves ${formatMoney(yearlySaving(t), t.currency)})`}
          </div>
          <button type="button" class="small" onClick={() => props.onPick(t)}>
            {props.action} to {t.name}
          </button>
        </div>
      ))}
    </div>
  );
}

/** Seed 003 §3.3's four steps: choose, compare with the current tier, see the
 * proration now and the next invoice, pay. The preview is one call; the upgrade
 * charges the proration through Stripe at once. */
function Upgrade(props: { s: Subscription; catalog: CatalogTier[]; nameOf: (tierId: string) => string; onChanged: () => void }) {
  const { s, catalog, nameOf, onChanged } = props;
  const period: Period = s.billingPeriod ?? "monthly";
  const { up } = planChoices(catalog, s.tierId);
  const [step, setStep] = useState<Step>({ kind: "choose" });
  const [done, setDone] = useState<Schemas["PlanChangeResult"] | null>(null);
  const preview = useAsync(
    () =>
      step.kind === "choose"
        ? Promise.resolve(null)
        : ok(api.POST("/api/billing/upgrade/preview", { body: { tierId: step.to.tierId, billingPeriod: period } })),
    [step.kind === "choose" ? "" : step.to.tierId],
  );
  const pay = useAction(async (to: CatalogTier) => {
    const result = await ok(
      api.PUT("/api/billing/upgrade", {
        params: { header: { "Idempotency-Key": key() } },
        body: { tierId: to.tierId, billingPeriod: period },
      }),
    );
    setDone(result);
    setStep({ kind: "choose" });
    onChanged();
  });
  const p = preview.data;
  const stepNo = step.kind === "choose" ? 1 : step.kind === "compare" ? 2 : 3;
  return (
    <Section title="Upgrade" id="upgrade-title">
      <ol class="steps" aria-label="Upgrade steps" data-testid="upgrade-steps">
        {["Choose", "Compare", "Proration", "Pay"].map((label, i) => (
          <li key={label} aria-current={i + 1 === stepNo ? "step" : undefined}>
            {i + 1}. {label}
          </li>
        ))}
      </ol>
      {done && (
        <p class="banner ok" role="status" data-testid="upgrade-done">
          You are now on {nameOf(done.subscription.tierId)}.{" "}
          {done.prorationInvoice
            ? `Charged now: ${formatMoney(done.prorationInvoice.amountPaid, s.currency)} (invoice ${done.prorationInvoice.invoiceId}).`
            : "Nothing was charged now."}
        </p>
      )}
      {step.kind === "choose" && (
        <TierChoice tiers={up} period={period} currency={s.currency} action="Upgrade" onPick={(to) => setStep({ kind: "compare", to })} />
      )}
      {step.kind !== "choose" && (
        <>
          <ErrorBanner error={preview.error} />
          {!p ? (
            preview.error ? (
              <button type="button" class="secondary" onClick={() => setStep({ kind: "choose" })}>
                Back to the tiers
              </button>
            ) : (
              <Loading what="Working out the change" />
            )
          ) : step.kind === "compare" ? (
            <div data-testid="upgrade-compare">
              <div class="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th />
                      <th>Now: {p.current.name}</th>
                      <th>After: {p.target.name}</th>
                    </tr>
                  </thead>
                  <tbody>
                    <tr>
                      <th scope="row">Price per {PERIOD_WORD[p.target.billingPeriod]}</th>
                      <td>{formatMoney(p.current.price, p.currency)}</td>
                      <td>{formatMoney(p.target.price, p.currency)}</td>
                    </tr>
                    <tr>
                      <th scope="row">Visibility (PCR multiplier)</th>
                      <td>×{p.current.pcrMultiplier}</td>
                      <td>×{p.target.pcrMultiplier}</td>
                    </tr>
                    {p.limitsRaised.map((l) => (
                      <tr key={l.limit}>
                        <th scope="row">{limitLabel(l.limit)}</th>
                        <td>{l.from ?? "Unlimited"}</td>
                        <td>{l.to ?? "Unlimited"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {p.featuresGained.length > 0 && (
                <p>
                  Features you gain: {p.featuresGained.map((f) => f.name).join(", ")}.
                </p>
              )}
              {p.upsell && !p.upsell.matchesTarget && (
                <p class="banner info">Based on your usage we would suggest {p.upsell.recommendedTierId}.</p>
              )}
              <div class="form-actions">
                <button type="button" class="secondary" onClick={() => setStep({ kind: "choose" })}>
                  Back
                </button>
                <button type="button" onClick={() => setStep({ kind: "proration", to: step.to })}>
                  Continue
                </button>
              </div>
            </div>
          ) : (
            <div data-testid="upgrade-proration">
              <div class="cards">
                <Card title="Credit for unused time" value={formatMoney(p.proration.credit, p.currency)} />
                <Card title="New tier for the rest of the period" value={formatMoney(p.proration.charge, p.currency)} />
                <Card testid="due-now" title="Charged now" value={formatMoney(p.proration.amountDueNow, p.currency)} />
                <Card
                  testid="next-invoice"
                  title="Next invoice"
                  value={formatMoney(p.nextInvoice.amount, p.currency)}
                  sub={`on ${formatDate(p.nextInvoice.date)}`}
                />
              </div>
              <p class="muted">
                Effective {formatDate(p.effectiveDate)}.{" "}
                {p.paymentMethod ? `Charged to ${p.paymentMethod.brand} •••• ${p.paymentMethod.last4}.` : "Charged to your card on file."}
              </p>
              <ErrorBanner error={pay.error} />
              <div class="form-actions">
                <button type="button" class="secondary" onClick={() => setStep({ kind: "compare", to: step.to })}>
                  Back
                </button>
                <button type="button" disabled={pay.busy} onClick={() => void pay.go(step.to)}>
                  Pay {formatMoney(p.proration.amountDueNow, p.currency)} and upgrade
                </button>
              </div>
            </div>
          )}
        </>
      )}
    </Section>
  );
}

function Downgrade({ s, catalog, onChanged }: { s: Subscription; catalog: CatalogTier[]; onChanged: () => void }) {
  const period: Period = s.billingPeriod ?? "monthly";
  const { down } = planChoices(catalog, s.tierId);
  const [picked, setPicked] = useState<CatalogTier | null>(null);
  const go = useAction(async (to: CatalogTier) => {
    await ok(
      api.PUT("/api/billing/downgrade", {
        params: { header: { "Idempotency-Key": key() } },
        body: { tierId: to.tierId, billingPeriod: period, effective: "period_end" },
      }),
    );
    setPicked(null);
    onChanged();
  });
  if (down.length === 0) return null;
  return (
    <Section title="Downgrade" id="downgrade-title">
      <p class="muted">A downgrade starts at the end of the period you paid for: you keep your tier until then.</p>
      {picked ? (
        <div class="banner warn" data-testid="downgrade-confirm">
          Move to {picked.name} at {formatMoney(priceOf(picked, period), picked.currency)} per {PERIOD_WORD[period]} from{" "}
          {formatDate(s.subscriptionEndDate)}?
          <div class="form-actions">
            <button type="button" class="secondary" onClick={() => setPicked(null)}>
              Keep my plan
            </button>
            <button type="button" disabled={go.busy} onClick={() => void go.go(picked)}>
              Schedule the downgrade
            </button>
          </div>
        </div>
      ) : (
        <TierChoice tiers={down} period={period} currency={s.currency} action="Downgrade" onPick={setPicked} />
      )}
      <ErrorBanner error={go.error} />
    </Section>
  );
}

function Cancel({ s, current, onChanged }: { s: Subscription; current: CatalogTier; onChanged: () => void }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const cancel = useAction(async () => {
    await ok(
      api.DELETE("/api/billing/cancel", {
        params: { header: { "Idempotency-Key": key() } },
        body: reason.trim() ? { reason: reason.trim() } : {},
      }),
    );
    setOpen(false);
    onChanged();
  });
  return (
    <Section title="Cancel" id="cancel-title">
      {!open ? (
        <button type="button" class="secondary" onClick={() => setOpen(true)}>
          Cancel my subscription…
        </button>
      ) : (
        <div data-testid="cancel-confirm">
          <p class="banner warn">
            You keep {current.name} until {formatDate(s.subscriptionEndDate)} and are not charged again. After that your
            account moves to the free tier: the features and limits of {current.name} end, and your listings lose its
            visibility boost (×{current.pcrMultiplier}).
          </p>
          <Field label="Why are you leaving? (optional)" error={fieldError(cancel.error, "reason")} name="reason">
            {(id, describedBy) => (
              <input id={id} aria-describedby={describedBy} value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
            )}
          </Field>
          <ErrorBanner error={cancel.error} shownFields={["reason"]} />
          <div class="form-actions">
            <button type="button" class="secondary" onClick={() => setOpen(false)}>
              Keep my subscription
            </button>
            <button type="button" disabled={cancel.busy} onClick={() => void cancel.go()}>
              Cancel at the end of the period
            </button>
          </div>
        </div>
      )}
    </Section>
  );
}

function Subscribe({ catalog, s, plan }: { catalog: CatalogTier[]; s: Subscription; plan: ChosenPlan | null }) {
  const [period, setPeriod] = useState<Period>(plan?.period ?? "monthly");
  const [code, setCode] = useState(plan?.code ?? "");
  const planned = plan ? catalog.find((t) => t.tierId === plan.tierId) : undefined;
  // Every paid tier: someone whose term lapsed may take the same tier again.
  const choices = planChoices(catalog, "").up;
  const start = useAction(async (to: CatalogTier) => {
    const body: Schemas["SubscribeRequest"] = { tierId: to.tierId, billingPeriod: period, ...returnUrls(window.location.origin, "checkout") };
    if (code.trim()) body.promotionCode = code.trim();
    // The storefront's choice: its add-ons, and the visitor id its prices were shown under.
    if (plan && to.tierId === plan.tierId) {
      if (plan.addOns.length > 0) body.addOns = plan.addOns;
      if (plan.visitor) body.visitorId = plan.visitor;
    }
    const session = await ok(api.POST("/api/billing/subscribe", { params: { header: { "Idempotency-Key": key() } }, body }));
    if (session.url) window.location.assign(session.url);
  });
  // The promotions API's reasons for a refused code (422 invalid_promotion_code).
  const reasons = start.error instanceof ApiError && Array.isArray(start.error.details.reasons)
    ? (start.error.details.reasons as { code: string; message: string }[])
    : [];
  return (
    <Section title="Choose a plan" id="subscribe-title">
      {plan && !planned && (
        <p class="banner warn" data-testid="plan-unavailable">
          The plan you picked on the pricing page is no longer offered. Please choose another below.
        </p>
      )}
      {plan && planned && <PlannedPurchase plan={plan} tier={planned} period={period} />}
      <div class="filters">
        <Field label="Billing" name="billingPeriod">
          {(id) => (
            <select id={id} value={period} onChange={(e) => setPeriod(e.currentTarget.value as Period)}>
              <option value="monthly">Monthly</option>
              <option value="yearly">Yearly</option>
            </select>
          )}
        </Field>
        <Field label="Promotion code" error={fieldError(start.error, "promotionCode")} name="promotionCode">
          {(id, describedBy) => (
            <input id={id} aria-describedby={describedBy} value={code} maxLength={64} onInput={(e) => setCode(e.currentTarget.value)} />
          )}
        </Field>
      </div>
      {plan && planned ? (
        <div class="form-actions">
          <button type="button" data-testid="plan-pay" disabled={start.busy} onClick={() => void start.go(planned)}>
            Continue to payment
          </button>
        </div>
      ) : (
        <TierChoice tiers={choices} period={period} currency={s.currency} action="Subscribe" onPick={(t) => void start.go(t)} />
      )}
      <ErrorBanner error={start.error} shownFields={["promotionCode"]} />
      {reasons.length > 0 && (
        <ul data-testid="promotion-reasons">
          {reasons.map((r) => (
            <li key={r.code}>{r.message}</li>
          ))}
        </ul>
      )}
    </Section>
  );
}

/** What the subscription's add-ons cost per period, as Stripe charges them. */
function addOnsTotal(s: Subscription): number {
  return (s.addOns ?? []).reduce((sum, a) => sum + a.price, 0);
}

/**
 * The add-ons the tier's segment offers, attached to or removed from the running
 * subscription (`PUT /api/billing/add-ons`; prorated on the next invoice). The
 * total shown is the API's price for the chosen set, bundle rule included.
 */
function AddOns({ s, tier, onChanged }: { s: Subscription; tier: CatalogTier; onChanged: () => void }) {
  const offered = useAsync(
    () => ok(api.GET("/api/segments/{segmentId}", { params: { path: { segmentId: tier.segment }, query: {} } })).then((p) => p.addOns),
    [tier.segment],
  );
  const current = (s.addOns ?? []).map((a) => a.addOnId);
  const [wanted, setWanted] = useState<string[]>(current);
  useEffect(() => setWanted(current), [current.join(",")]);
  const period = s.billingPeriod ?? "monthly";
  const changed = wanted.slice().sort().join(",") !== current.slice().sort().join(",");
  const price = useAsync(
    () => ok(api.POST("/api/storefront/price", { body: { tierId: tier.tierId, billingPeriod: period, addOns: wanted } })),
    [tier.tierId, period, wanted.join(",")],
  );
  const save = useAction(async () => {
    await ok(api.PUT("/api/billing/add-ons", { params: { header: { "Idempotency-Key": key() } }, body: { addOns: wanted } }));
    onChanged();
  });
  const list = offered.data ?? [];
  // A segment that offers none (and a subscription that has none) has nothing to show.
  if (offered.data && list.length === 0 && current.length === 0) return null;
  const toggle = (id: string) => setWanted(wanted.includes(id) ? wanted.filter((w) => w !== id) : [...wanted, id]);
  return (
    <Section title="Add-ons" id="add-ons-title">
      <ErrorBanner error={offered.error ?? save.error} shownFields={["addOns"]} />
      {!offered.data ? (
        <Loading what="Loading add-ons" />
      ) : (
        <div data-testid="portal-add-ons">
          <p class="muted">Three or more take 10% off each. A change is prorated on your next invoice.</p>
          {list.map((a) => (
            <label key={a.addOnId} class="checkbox">
              <input type="checkbox" checked={wanted.includes(a.addOnId)} data-addon={a.addOnId} onChange={() => toggle(a.addOnId)} />
              <span>
                {a.name} <span class="muted">{formatMoney(period === "yearly" ? a.prices.yearly : a.prices.monthly, a.currency)} / {PERIOD_WORD[period]}</span>
                {current.includes(a.addOnId) && <span class="badge badge-active"> on your plan</span>}
              </span>
            </label>
          ))}
          {price.data && (
            <p data-testid="add-ons-total">
              Add-ons: <strong>{formatMoney(price.data.addOns.total, price.data.currency)}</strong> per {PERIOD_WORD[period]}
              {price.data.addOns.bundleDiscount > 0 && ` (bundle saves ${formatMoney(price.data.addOns.bundleDiscount, price.data.currency)})`}
            </p>
          )}
          <div class="form-actions">
            <button type="button" disabled={!changed || save.busy} onClick={() => void save.go()}>
              Save add-ons
            </button>
          </div>
        </div>
      )}
    </Section>
  );
}

/** The storefront's choice, priced by the API's one engine (ruled price, add-ons, bundle rule). */
function PlannedPurchase({ plan, tier, period }: { plan: ChosenPlan; tier: CatalogTier; period: Period }) {
  const price = useAsync(() => {
    const body = { tierId: tier.tierId, billingPeriod: period, addOns: plan.addOns, ...(plan.visitor ? { visitorId: plan.visitor } : {}) };
    return ok(api.POST("/api/storefront/price", { body }));
  }, [tier.tierId, period]);
  const p = price.data;
  return (
    <div class="card notice" data-testid="planned-purchase">
      <h3>Your choice from the pricing page</h3>
      <ErrorBanner error={price.error} />
      {!p ? (
        <Loading what="Pricing your plan" />
      ) : (
        <table>
          <tbody>
            <tr>
              <td>{tier.name}</td>
              <td>{formatMoney(p.pricing.price, p.currency)}</td>
            </tr>
            {p.addOns.lines.map((l) => (
              <tr key={l.addOnId}>
                <td>{l.name}</td>
                <td>{formatMoney(l.price, p.currency)}</td>
              </tr>
            ))}
            <tr>
              <td>
                <strong>Total per {PERIOD_WORD[period]}</strong> <span class="muted">before any promotion code</span>
              </td>
              <td>
                <strong data-testid="planned-total">{formatMoney(p.total, p.currency)}</strong>
              </td>
            </tr>
          </tbody>
        </table>
      )}
    </div>
  );
}

function Usage({ version }: { version: string }) {
  const current = useAsync(() => ok(api.GET("/api/usage/current", { params: { query: {} } })), [version]);
  const history = useAsync(() => ok(api.GET("/api/usage/history", { params: { query: { months: 13 } } })), [version]);
  const features = useAsync(() => ok(api.GET("/api/features/available", { params: { query: {} } })), [version]);
  const u = current.data;
  const h = history.data;
  return (
    <Section title="Usage this month" id="usage-title">
      <ErrorBanner error={current.error ?? history.error ?? features.error} />
      {!u ? (
        <Loading what="Loading usage" />
      ) : (
        <>
          <div class="table-wrap">
            <table data-testid="usage-table">
              <thead>
                <tr>
                  <th>Metric</th>
                  <th>Used</th>
                  <th>Limit</th>
                  <th>Share</th>
                  <th>Overage</th>
                </tr>
              </thead>
              <tbody>
                {(u.metrics ?? []).map((m) => {
                  const share = usageShare(m.used ?? 0, m.limit);
                  return (
                    <tr key={m.metric} data-metric={m.metric}>
                      <td>{limitLabel(m.metric ?? "")}</td>
                      <td>{m.used ?? 0}</td>
                      <td>{m.limit ?? "Unlimited"}</td>
                      <td>
                        {share === null ? (
                          <span class="muted">—</span>
                        ) : (
                          <meter min={0} max={100} value={share} high={80} optimum={0} aria-label={`${share}% of the limit`}>
                            {share}%
                          </meter>
                        )}
                      </td>
                      <td>{m.overageAmount ? formatMoney(m.overageAmount, u.currency ?? "usd") : "—"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {(u.overageTotal ?? 0) > 0 && (
            <p class="banner warn" data-testid="overage-total">
              Your next invoice adds {formatMoney(u.overageTotal, u.currency ?? "usd")} for usage beyond your limits.
            </p>
          )}
        </>
      )}
      {h && Object.keys(h.metrics).length > 0 && (
        <ChartView
          testid="usage-chart"
          label="Usage over the last 13 months"
          config={{
            type: "line",
            data: {
              labels: h.months.map(formatMonth),
              datasets: Object.entries(h.metrics).map(([metric, counts], i) => ({
                label: limitLabel(metric),
                data: counts,
                borderColor: PALETTE[i % PALETTE.length],
                backgroundColor: PALETTE[i % PALETTE.length],
              })),
            },
          }}
        />
      )}
      {features.data && (
        <>
          <h3>Features on your tier</h3>
          <ul data-testid="features-available">
            {(features.data.features ?? []).map((f) => (
              <li key={f.featureId}>{f.name}</li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}

function Invoices({ version }: { version: string }) {
  const pager = usePager(version);
  const list = useAsync(
    () => ok(api.GET("/api/billing/invoices", { params: { query: { limit: 10, cursor: pager.cursor } } })),
    [version, pager.cursor],
  );
  return (
    <Section title="Invoices" id="invoices-title">
      <ErrorBanner error={list.error} />
      {!list.data ? (
        <Loading what="Loading invoices" />
      ) : (
        <PagedTable
          testid="portal-invoices"
          columns={5}
          head={
            <>
              <th>Invoice</th>
              <th>Period</th>
              <th>Status</th>
              <th>Amount</th>
              <th>Download</th>
            </>
          }
          items={list.data.items}
          empty="No invoices yet."
          nextCursor={list.data.nextCursor}
          pager={pager}
          row={(i) => (
            <tr key={i.invoiceId} data-invoice={i.invoiceId}>
              <td>{i.invoiceNumber ?? i.invoiceId}</td>
              <td>
                {formatDate(i.periodStart)} – {formatDate(i.periodEnd)}
              </td>
              <td>
                <Badge value={i.billingStatus} />
              </td>
              <td>{formatMoney(i.amount, i.currency)}</td>
              <td>
                {i.pdfUrl && (
                  <a
                    href={i.pdfUrl}
                    target="_blank"
                    rel="noreferrer"
                    aria-label={`PDF of invoice ${i.invoiceNumber ?? i.invoiceId} (opens in a new tab)`}
                  >
                    PDF
                  </a>
                )}{" "}
                {i.invoiceUrl && (
                  <a
                    href={i.invoiceUrl}
                    target="_blank"
                    rel="noreferrer"
                    aria-label={`Invoice ${i.invoiceNumber ?? i.invoiceId} on Stripe (opens in a new tab)`}
                  >
                    View
                  </a>
                )}
              </td>
            </tr>
          )}
        />
      )}
    </Section>
  );
}
