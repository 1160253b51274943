// The partner portal's pure rules (unit-tested without a DOM). The API decides every
// change again; these only choose what the portal offers and how it says it.
import type { Schemas } from "./api/client";

export type CatalogTier = Schemas["PublicTier"];
export type Subscription = Schemas["BillingSubscription"];
export type Period = Schemas["BillingPeriod"];

/** A paid tier costs something in either period (billing's `is_paid`). */
export function isPaid(t: Pick<CatalogTier, "prices">): boolean {
  return t.prices.monthly > 0 || t.prices.yearly > 0;
}

/** The order plan changes go by: tier level, then the monthly price (billing's `Tier::rank`). */
function compareRank(a: Pick<CatalogTier, "tierLevel" | "prices">, b: Pick<CatalogTier, "tierLevel" | "prices">): number {
  return a.tierLevel - b.tierLevel || a.prices.monthly - b.prices.monthly;
}

/**
 * A running paid subscription that Stripe bills: upgrade, downgrade and cancel apply
 * to it; anyone else subscribes through Checkout. A subscription cancelled at the
 * period end still runs until then, but there is nothing left to change.
 */
export function hasRunningSubscription(s: Subscription): boolean {
  return !!s.stripeSubscriptionId && (s.status === "active" || s.status === "trialing" || s.status === "past_due");
}

/**
 * The paid tiers above and below the current one, in rank order (cheapest first).
 * Levels rank tiers within one segment (seed 002), so a paid tier's moves stay in its
 * segment and currency; from a free tier (or none) every paid tier is a step up.
 */
export function planChoices(catalog: CatalogTier[], currentId: string): { up: CatalogTier[]; down: CatalogTier[] } {
  const paid = catalog.filter(isPaid).sort(compareRank);
  const current = catalog.find((t) => t.tierId === currentId);
  if (!current || !isPaid(current)) return { up: paid.filter((t) => t.tierId !== currentId), down: [] };
  const same = paid.filter((t) => t.segment === current.segment && t.currency === current.currency);
  return {
    up: same.filter((t) => compareRank(t, current) > 0),
    down: same.filter((t) => compareRank(t, current) < 0),
  };
}

/**
 * A cancelled term that still runs (paid through its end date): the partner keeps
 * the tier until then, and a new subscription now would charge twice.
 */
export function cancelledTermRunning(s: Subscription, today: string): boolean {
  return s.status === "cancelled" && !!s.subscriptionEndDate && s.subscriptionEndDate >= today;
}

/**
 * What a tier costs per period today: the price after the pricing rules in force
 * (the catalog's `pricing`, as checkout charges it), else the list price.
 */
export function priceOf(t: Pick<CatalogTier, "prices" | "pricing">, period: Period): number {
  const ruled = t.pricing?.[period];
  if (ruled) return ruled.price;
  return period === "yearly" ? t.prices.yearly : t.prices.monthly;
}

/** What paying yearly saves against twelve monthly payments (never below zero). */
export function yearlySaving(t: Pick<CatalogTier, "prices" | "pricing">): number {
  return Math.max(0, priceOf(t, "monthly") * 12 - priceOf(t, "yearly"));
}

/**
 * A price the partner keeps from before a price change: what they pay differs from
 * what the tier costs today for the same period. Null when they pay today's price
 * (or are on no paid period).
 */
export function keptPrice(s: Subscription, tier: CatalogTier | undefined): { paying: number; today: number } | null {
  if (!tier || !s.billingPeriod || !isPaid(tier) || s.pricePerPeriod <= 0) return null;
  const today = priceOf(tier, s.billingPeriod);
  return today !== s.pricePerPeriod ? { paying: s.pricePerPeriod, today } : null;
}

/** The payment state in words, when it needs the partner's attention. */
export function paymentNotice(s: Subscription): { level: "warn" | "error"; text: string } | null {
  if (s.status === "past_due" || s.paymentStatus === "past_due" || s.paymentStatus === "failed") {
    const tries = s.paymentFailures === 1 ? "1 attempt" : `${s.paymentFailures} attempts`;
    return {
      level: s.paymentFailures >= 3 ? "error" : "warn",
      text:
        s.paymentFailures > 0
          ? `Your last payment failed (${tries}). Stripe will try again; update your card to keep your plan.`
          : "Your payment is overdue. Update your card to keep your plan.",
    };
  }
  if (s.trialEndDate && s.status === "trialing") {
    return { level: "warn", text: `Your free trial ends on ${s.trialEndDate}.` };
  }
  return null;
}

/** Used against limit as a share for a bar, 0–100; an unlimited metric has no bar. */
export function usageShare(used: number, limit: number | null | undefined): number | null {
  if (limit === null || limit === undefined) return null;
  if (limit <= 0) return used > 0 ? 100 : 0;
  return Math.min(100, Math.round((used / limit) * 100));
}

/** The return addresses Stripe's hosted pages send the partner back to (this origin). */
export function returnUrls(origin: string, what: "checkout" | "card"): { successUrl: string; cancelUrl: string } {
  return {
    successUrl: `${origin}/partner-portal?${what}=done&session_id={CHECKOUT_SESSION_ID}`,
    cancelUrl: `${origin}/partner-portal?${what}=cancelled`,
  };
}

/** The portal's own id from its path: `/partner-portal` or `/partner-portal/{id}`. */
export function portalPartnerId(sub: string): string | null {
  const id = sub.split("/")[0] ?? "";
  if (id === "") return null;
  try {
    return decodeURIComponent(id);
  } catch {
    return id; // a malformed escape names no partner: "not found"
  }
}
