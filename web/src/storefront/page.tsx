// The public pricing storefront, /pricing[/{segmentId}] (issue 23 §1; seed 002 Phase 4):
// the segment selector, the segment's tiers by level with the popular badge and the
// prices after today's pricing rules (with the reason), the comparison table, add-ons,
// and the upsell offers as a modal. No sign-in: the page uses the public client only.
// "Choose" hands the plan to the partner portal, which signs in and opens Checkout.
//
// First render: GET /api/segments and GET /api/segments/{id} (both served from the
// API's public cache). Everything else waits for the visitor to act.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, ok, type Schemas } from "../api/client";
import { publicApi } from "../api/public";
import { formatMoney } from "../format";
import { limitLabel, limitNoun } from "../limits";
import { navigate } from "../router";
import { Loading } from "../ui";
import {
  bestYearlySavingPercent,
  capacityText,
  checkoutPath,
  isPaidTier,
  PENDING_CONVERSION_KEY,
  priceReasons,
  randomId,
  sentence,
  shownPrice,
  visitorId as keptVisitorId,
  yearlySaving,
  type Period,
  type StoreTier,
} from "./rules";
import "./storefront.css";

type Segment = Schemas["PublicSegment"];
type Packages = Schemas["SegmentPackages"];
type Offer = Schemas["UpsellOffers"]["offers"][number];
type Funnel = Schemas["StorefrontEvent"]["event"];

const PERIOD_WORD: Record<Period, string> = { monthly: "month", yearly: "year" };

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/**
 * Sends a funnel event; a lost beacon never stops the visitor. The promise settles
 * when the API has answered (or failed, or 1.5 s have passed), so a step that leaves
 * the page can wait for it instead of cancelling it.
 */
function track(event: Funnel, segmentId: string, extra: { tierId?: string; ruleId?: string } = {}): Promise<void> {
  const body: Schemas["StorefrontEvent"] = { eventId: randomId(24), event, segmentId, ...extra };
  const sent = publicApi.POST("/api/storefront/events", { body }).then(
    () => undefined,
    () => undefined,
  );
  return Promise.race([sent, new Promise<void>((done) => setTimeout(done, 1500))]);
}

export function StorefrontPage({ segmentId }: { segmentId: string | null }) {
  const visitor = useMemo(() => keptVisitorId(storage()), []);
  const [segments, setSegments] = useState<Segment[] | null>(null);
  const [packages, setPackages] = useState<Packages | null>(null);
  const [problem, setProblem] = useState<unknown>(null);
  const [period, setPeriod] = useState<Period>("monthly");
  const [chosen, setChosen] = useState<StoreTier | null>(null);
  const [comparing, setComparing] = useState(false);
  const exposed = useRef(new Set<string>());

  useEffect(() => {
    document.title = "Pricing · Tierdesk";
    ok(publicApi.GET("/api/segments")).then((l) => setSegments(l.items), setProblem);
  }, []);
  const current = segmentId ?? segments?.[0]?.segmentId ?? null;
  useEffect(() => {
    if (!current) return;
    setPackages(null);
    setChosen(null);
    setComparing(false);
    const query = visitor ? { userId: visitor } : {};
    ok(publicApi.GET("/api/segments/{segmentId}", { params: { path: { segmentId: current }, query } })).then(setPackages, setProblem);
  }, [current]);
  // A visitor priced by a running experiment is recorded as exposed to it, once per
  // experiment (the assignment route counts a participant once however often it is called).
  useEffect(() => {
    if (!packages || !visitor) return;
    for (const t of packages.tiers.flatMap((l) => l.tiers)) {
      const id = t.experiment?.experimentId;
      if (!id || exposed.current.has(id)) continue;
      exposed.current.add(id);
      publicApi.POST("/api/experiments/{experimentId}/assign", { params: { path: { experimentId: id } }, body: { userId: visitor } }).catch(() => undefined);
    }
  }, [packages]);

  const pick = (id: string) => {
    if (id === current) return;
    void track("segment_selected", id);
    navigate(`/pricing/${encodeURIComponent(id)}`);
  };
  const tiers = packages ? packages.tiers.flatMap((l) => l.tiers) : [];
  const savePercent = bestYearlySavingPercent(tiers.filter(isPaidTier));

  return (
    <div class="sf">
      <header class="sf-top">
        <a class="brand" href="/pricing">
          Tierdesk
        </a>
        <span class="muted">Pricing</span>
        <a class="sf-signin" href="/partner-portal">
          Partner sign-in
        </a>
      </header>
      <main id="main" class="sf-main" tabIndex={-1}>
        <h1>Plans for every partner</h1>
        <p class="muted sf-lead">Pick the kind of business you run, then the plan that fits. Prices are per account, before tax.</p>
        {problem ? (
          <LoadProblem error={problem} />
        ) : !segments ? (
          <Loading what="Loading plans" />
        ) : segments.length === 0 ? (
          <p class="banner info">Plans are being updated. Please come back shortly.</p>
        ) : (
          <>
            <SegmentSelector segments={segments} current={current} onPick={pick} />
            {!packages ? (
              <Loading what="Loading the segment's plans" />
            ) : (
              <>
                <div class="sf-period" role="group" aria-label="Billing period">
                  {(["monthly", "yearly"] as const).map((p) => (
                    <button key={p} type="button" class={`sf-toggle${period === p ? " on" : ""}`} aria-pressed={period === p} onClick={() => setPeriod(p)}>
                      {p === "monthly" ? "Monthly" : "Yearly"}
                    </button>
                  ))}
                  {savePercent > 0 && <span class="sf-save">Save up to {savePercent}% yearly</span>}
                </div>
                <div class="sf-tiers" data-testid="storefront-tiers">
                  {tiers.map((t) => (
                    <TierCard
                      key={t.tierId}
                      t={t}
                      period={period}
                      selected={chosen?.tierId === t.tierId}
                      onChoose={() => {
                        void track("tier_viewed", packages.segment.segmentId, { tierId: t.tierId });
                        setChosen(t);
                      }}
                    />
                  ))}
                </div>
                <div class="sf-compare-bar">
                  <button
                    type="button"
                    class="secondary"
                    aria-expanded={comparing}
                    aria-controls="sf-compare"
                    onClick={() => {
                      if (!comparing) void track("tier_compared", packages.segment.segmentId);
                      setComparing(!comparing);
                    }}
                  >
                    {comparing ? "Hide the comparison" : "Compare every feature"}
                  </button>
                </div>
                {comparing && <Comparison packages={packages} />}
                {chosen && (
                  <PlanPanel
                    key={chosen.tierId}
                    packages={packages}
                    tier={chosen}
                    period={period}
                    visitor={visitor}
                    onSwitch={(id) => {
                      const to = tiers.find((t) => t.tierId === id);
                      if (to) setChosen(to);
                    }}
                    onClose={() => setChosen(null)}
                  />
                )}
              </>
            )}
          </>
        )}
      </main>
    </div>
  );
}

function LoadProblem({ error }: { error: unknown }) {
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <div class="card notice" role="alert" data-testid="storefront-problem">
      <h2>{notFound ? "There is no such plan group" : "Plans could not be loaded"}</h2>
      <p>{notFound ? "It may have been retired." : "Please try again in a moment."}</p>
      <a href="/pricing">See every plan</a>
    </div>
  );
}

function SegmentSelector({ segments, current, onPick }: { segments: Segment[]; current: string | null; onPick: (id: string) => void }) {
  return (
    <nav class="sf-segments" aria-label="Kinds of business" data-testid="segment-selector">
      {segments.map((s) => (
        <button
          key={s.segmentId}
          type="button"
          class={`sf-segment${s.segmentId === current ? " on" : ""}`}
          aria-pressed={s.segmentId === current}
          data-segment={s.segmentId}
          onClick={() => onPick(s.segmentId)}
        >
          <span class="sf-segment-name">{s.name}</span>
          <span class="sf-segment-target">{s.target}</span>
          <span class="sf-segment-range">
            {s.priceRange.max === null || s.priceRange.max === undefined
              ? `From ${formatMoney(s.priceRange.min, "usd")}`
              : `${formatMoney(s.priceRange.min, "usd")} – ${formatMoney(s.priceRange.max, "usd")}`}{" "}
            a month
          </span>
        </button>
      ))}
    </nav>
  );
}

function PriceLine({ t, period }: { t: StoreTier; period: Period }) {
  const price = shownPrice(t, period);
  const ruled = t.pricing?.[period];
  const reasons = priceReasons(ruled);
  const list = ruled?.listPrice ?? price;
  if (!isPaidTier(t)) {
    return <div class="sf-price"><span class="sf-amount">Free</span></div>;
  }
  return (
    <div class="sf-price" data-testid={`price-${t.tierId}`}>
      {list !== price && (
        <s class="muted sf-list" aria-label={`List price ${formatMoney(list, t.currency)}`}>
          {formatMoney(list, t.currency)}
        </s>
      )}
      <span class="sf-amount">{formatMoney(price, t.currency)}</span>
      <span class="muted"> / {PERIOD_WORD[period]}</span>
      {reasons.length > 0 && (
        <div class="sf-reason" data-testid={`price-reason-${t.tierId}`}>
          {reasons.join(", ")}
        </div>
      )}
      {period === "yearly" && yearlySaving(t) > 0 && (
        <div class="sf-yearly">Save {formatMoney(yearlySaving(t), t.currency)} against paying monthly</div>
      )}
      {t.commitmentMonths > 0 && <div class="muted sf-small">{t.commitmentMonths}-month commitment</div>}
    </div>
  );
}

function TierCard({ t, period, selected, onChoose }: { t: StoreTier; period: Period; selected: boolean; onChoose: () => void }) {
  const capacity = capacityText(t, limitNoun);
  return (
    <article class={`sf-tier card${t.popular ? " popular" : ""}${selected ? " selected" : ""}`} data-tier={t.tierId} aria-labelledby={`tier-${t.tierId}`}>
      {t.popular && <span class="sf-badge">Most popular</span>}
      <h2 id={`tier-${t.tierId}`}>{t.name}</h2>
      <p class="muted sf-desc">{t.description}</p>
      <PriceLine t={t} period={period} />
      {capacity && <p class="sf-capacity">{capacity}</p>}
      <ul class="sf-features">
        {t.features.slice(0, 6).map((f) => (
          <li key={f.featureId}>{f.name}</li>
        ))}
        {t.features.length > 6 && <li class="muted">and {t.features.length - 6} more</li>}
      </ul>
      <button type="button" class={t.popular ? "" : "secondary"} onClick={onChoose} aria-pressed={selected}>
        {isPaidTier(t) ? `Choose ${t.name}` : "Start free"}
      </button>
    </article>
  );
}

function Comparison({ packages }: { packages: Packages }) {
  const c = packages.comparison;
  return (
    <section id="sf-compare" class="card sf-compare" aria-label="Feature comparison">
      <div class="table-wrap">
        <table data-testid="comparison-table">
          <thead>
            <tr>
              <th scope="col">Feature</th>
              {c.tiers.map((t) => (
                <th key={t.tierId} scope="col">
                  {t.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {c.limits.map((row) => (
              <tr key={`limit-${row.limit}`}>
                <th scope="row">{limitLabel(row.limit)}</th>
                {row.byTier.map((cell) => (
                  <td key={cell.tierId}>{cell.value === null || cell.value === undefined ? "Unlimited" : cell.value.toLocaleString("en-US")}</td>
                ))}
              </tr>
            ))}
            {c.features.map((row) => (
              <tr key={row.featureId}>
                <th scope="row">{row.name}</th>
                {row.byTier.map((cell) => (
                  <td key={cell.tierId} class={cell.included ? "yes" : "no"}>
                    {cell.included ? <span aria-label="Included">✓</span> : <span aria-label="Not included">—</span>}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function PlanPanel(props: {
  packages: Packages;
  tier: StoreTier;
  period: Period;
  visitor: string | null;
  onSwitch: (tierId: string) => void;
  onClose: () => void;
}) {
  const { packages, tier, period, visitor } = props;
  const segment = packages.segment.segmentId;
  const [addOns, setAddOns] = useState<string[]>([]);
  const [quote, setQuote] = useState<{ total: number; bundle: number } | null>(null);
  const [quoteError, setQuoteError] = useState<unknown>(null);
  const [offers, setOffers] = useState<Offer[]>([]);
  const [code, setCode] = useState<string | undefined>(undefined);
  const seenRules = useRef(new Set<string>());
  const head = useRef<HTMLHeadingElement>(null);
  useEffect(() => head.current?.focus(), []);

  // The price with the add-ons, from the API's one pricing engine (bundle rule included).
  useEffect(() => {
    if (!isPaidTier(tier)) return;
    let live = true;
    const body: Schemas["StorefrontPriceRequest"] = { tierId: tier.tierId, billingPeriod: period, addOns };
    if (visitor) body.visitorId = visitor;
    ok(publicApi.POST("/api/storefront/price", { body })).then(
      (p) => live && (setQuote({ total: p.total, bundle: p.addOns.bundleDiscount }), setQuoteError(null)),
      (e: unknown) => live && setQuoteError(e),
    );
    return () => {
      live = false;
    };
  }, [tier.tierId, period, addOns.join(",")]);

  // Upsell offers for what the visitor has in front of them; each rule's modal is shown once.
  const evaluate = async (): Promise<Offer[]> => {
    const body: Schemas["UpsellEvaluateRequest"] = { tierId: tier.tierId, billingPeriod: period, addOns };
    if (visitor) body.visitorId = visitor;
    try {
      const answer = await ok(publicApi.POST("/api/upsell/evaluate", { body }));
      const fresh = answer.offers.filter((o) => !seenRules.current.has(o.ruleId));
      for (const o of fresh) {
        seenRules.current.add(o.ruleId);
        void track("upsell_shown", segment, { tierId: tier.tierId, ruleId: o.ruleId });
      }
      return fresh;
    } catch {
      return []; // an offer is never worth blocking the purchase
    }
  };
  useEffect(() => {
    void evaluate().then(setOffers);
  }, [tier.tierId]);

  const [leaving, setLeaving] = useState(false);
  const [atCheckout, setAtCheckout] = useState(false);
  const checkout = async () => {
    setLeaving(true);
    const more = await evaluate();
    setLeaving(false);
    if (more.length > 0) {
      // Shown on the way to checkout: declining it continues to checkout.
      setOffers(more);
      setAtCheckout(true);
      return;
    }
    await go();
  };
  const go = async () => {
    setLeaving(true);
    // Leaving the page would cancel the beacon: wait for it (bounded).
    await track("checkout_started", segment, { tierId: tier.tierId });
    const exp = tier.experiment;
    const keep = storage();
    if (exp && visitor && keep) {
      try {
        keep.setItem(PENDING_CONVERSION_KEY, JSON.stringify({ experimentId: exp.experimentId, visitor, tierId: tier.tierId }));
      } catch {
        // storage full or blocked: the conversion goes uncounted, the purchase does not
      }
    }
    window.location.assign(checkoutPath({ tierId: tier.tierId, period, addOns, code, visitor: visitor ?? undefined }));
  };
  const accept = (o: Offer) => {
    void track("upsell_accepted", segment, { tierId: tier.tierId, ruleId: o.ruleId });
    if (o.promotionCode) setCode(o.promotionCode);
    setOffers([]);
    setAtCheckout(false);
    if (o.toTierId && o.toTierId !== tier.tierId) props.onSwitch(o.toTierId);
  };

  const decline = () => {
    setOffers([]);
    if (atCheckout) void go();
  };
  const toggle = (id: string) => setAddOns(addOns.includes(id) ? addOns.filter((a) => a !== id) : [...addOns, id]);
  const total = quote?.total ?? shownPrice(tier, period);
  return (
    <section class="card sf-plan" aria-labelledby="sf-plan-title" data-testid="plan-panel">
      <div class="sf-plan-head">
        <h2 id="sf-plan-title" tabIndex={-1} ref={head}>
          Your plan: {tier.name}
        </h2>
        <button type="button" class="secondary small" onClick={props.onClose}>
          Close
        </button>
      </div>
      {isPaidTier(tier) && packages.addOns.length > 0 && (
        <fieldset class="sf-addons">
          <legend>Add-ons</legend>
          <p class="muted sf-small">Three or more add-ons take 10% off each.</p>
          {packages.addOns.map((a) => (
            <label key={a.addOnId} class="checkbox">
              <input type="checkbox" checked={addOns.includes(a.addOnId)} onChange={() => toggle(a.addOnId)} data-addon={a.addOnId} />
              <span>
                {a.name} <span class="muted">+{formatMoney(period === "yearly" ? a.prices.yearly : a.prices.monthly, a.currency)} / {PERIOD_WORD[period]}</span>
              </span>
            </label>
          ))}
        </fieldset>
      )}
      {isPaidTier(tier) ? (
        <p class="sf-total" data-testid="plan-total">
          Total <strong>{formatMoney(total, tier.currency)}</strong> / {PERIOD_WORD[period]}
          {quote && quote.bundle > 0 && <span class="sf-yearly"> (bundle saves {formatMoney(quote.bundle, tier.currency)})</span>}
        </p>
      ) : (
        <p>The free plan needs no card. Sign in to your partner account to start.</p>
      )}
      {quoteError !== null && <p class="banner warn">The total could not be worked out just now; checkout shows the exact amount.</p>}
      {code && (
        <p class="banner ok" data-testid="plan-code">
          Promotion code <strong>{code}</strong> will be applied at checkout.
        </p>
      )}
      <div class="form-actions">
        <button type="button" disabled={leaving} onClick={() => (isPaidTier(tier) ? void checkout() : window.location.assign("/partner-portal"))}>
          {isPaidTier(tier) ? "Continue to checkout" : "Sign in"}
        </button>
      </div>
      <p class="muted sf-small">You sign in (or create your partner account) next, then pay securely with Stripe. You can enter a promotion code there.</p>
      {offers.length > 0 && <UpsellModal offers={offers} currency={tier.currency} period={period} onAccept={accept} onDecline={decline} />}
    </section>
  );
}

function UpsellModal(props: { offers: Offer[]; currency: string; period: Period; onAccept: (o: Offer) => void; onDecline: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={dialog} class="sf-upsell" aria-labelledby="sf-upsell-title" data-testid="upsell-modal" onCancel={props.onDecline}>
      <h2 id="sf-upsell-title">Before you go on</h2>
      {props.offers.map((o) => (
        <div key={o.ruleId} class="sf-offer" data-rule={o.ruleId}>
          <p class="sf-offer-reason">{sentence(o.reason)}</p>
          {o.message && <p>{o.message}</p>}
          {o.toTierName && o.priceDifference !== null && o.priceDifference !== undefined && (
            <p>
              {o.toTierName} is {formatMoney(o.priceDifference, props.currency)} more a {PERIOD_WORD[props.period]}
              {o.saving ? `, and you save ${formatMoney(o.saving, props.currency)}` : ""}.
            </p>
          )}
          {o.featuresGained.length > 0 && (
            <ul class="sf-features">
              {o.featuresGained.map((f) => (
                <li key={f}>{f}</li>
              ))}
            </ul>
          )}
          {o.promotionCode && (
            <p>
              Use code <strong>{o.promotionCode}</strong> at checkout.
            </p>
          )}
          {(o.toTierId || o.promotionCode) && (
            <button type="button" onClick={() => props.onAccept(o)}>
              {o.toTierName ? `Switch to ${o.toTierName}` : "Use this code"}
            </button>
          )}
        </div>
      ))}
      <div class="form-actions">
        <button type="button" class="secondary" onClick={props.onDecline}>
          No thanks
        </button>
      </div>
    </dialog>
  );
}
