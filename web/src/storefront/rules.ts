// The pricing storefront's pure rules (unit-tested without a DOM). Every price comes
// from the API (the tier's `pricing`, the storefront price route); these only choose
// how to say it and what to send.
import type { Schemas } from "../api/client";

export type Period = Schemas["BillingPeriod"];
export type RuledPrice = Schemas["RuledPrice"];
export type StoreTier = Schemas["PublicTier"];

/** What the visitor pays per period for the tier today: the ruled price, else the list price. */
export function shownPrice(t: Pick<StoreTier, "prices" | "pricing">, period: Period): number {
  const ruled = t.pricing?.[period];
  return ruled ? ruled.price : period === "yearly" ? t.prices.yearly : t.prices.monthly;
}

/** A signed percentage of a step, in words ("+20%", "−15%"), to one decimal only when needed. */
export function stepPercent(before: number, after: number): string {
  if (before <= 0) return "";
  const tenths = Math.round(((after - before) * 1000) / before);
  const abs = Math.abs(tenths);
  const text = abs % 10 === 0 ? String(abs / 10) : (abs / 10).toFixed(1);
  return `${tenths < 0 ? "−" : "+"}${text}%`;
}

/**
 * Why the price differs from the list price, in words: each pricing rule in force
 * ("Peak season +20%") and a constraint that capped it. Empty when the list price stands.
 */
export function priceReasons(ruled: RuledPrice | undefined): string[] {
  if (!ruled) return [];
  const reasons = ruled.steps.map((s) => `${s.name} ${stepPercent(s.before, s.after)}`.trim());
  if (ruled.clampedBy === "competitiveThreshold") reasons.push("capped to stay competitive");
  else if (ruled.clampedBy === "minPrice") reasons.push("held at the minimum price");
  else if (ruled.clampedBy === "maxPrice") reasons.push("held at the maximum price");
  return reasons;
}

/** What paying yearly saves against twelve months at today's monthly price (never below zero). */
export function yearlySaving(t: Pick<StoreTier, "prices" | "pricing">): number {
  return Math.max(0, shownPrice(t, "monthly") * 12 - shownPrice(t, "yearly"));
}

/** The largest yearly saving of `tiers` as a whole percent of twelve monthly payments, or 0. */
export function bestYearlySavingPercent(tiers: Pick<StoreTier, "prices" | "pricing">[]): number {
  let best = 0;
  for (const t of tiers) {
    const twelve = shownPrice(t, "monthly") * 12;
    if (twelve > 0) best = Math.max(best, Math.floor((yearlySaving(t) * 100) / twelve));
  }
  return best;
}

/** A paid tier costs something in either period. */
export function isPaidTier(t: Pick<StoreTier, "prices">): boolean {
  return t.prices.monthly > 0 || t.prices.yearly > 0;
}

/** The headline capacity ("Up to 25 listings"), or null when the tier names none or it is unlimited. */
export function capacityText(t: Pick<StoreTier, "capacityLimit" | "limits">, noun: (name: string) => string): string | null {
  const name = t.capacityLimit;
  if (!name) return null;
  const value = (t.limits as Record<string, number | null | undefined>)[name];
  const what = noun(name);
  if (value === null || value === undefined) return `Unlimited ${what}`;
  // "Up to 1 listing": one of a counted thing is singular.
  const counted = value === 1 && what.endsWith("s") ? what.slice(0, -1) : what;
  return `Up to ${value.toLocaleString("en-US")} ${counted}`;
}

/** The first letter in capitals (the API's reasons are phrases, shown as sentences). */
export function sentence(text: string): string {
  return text ? text[0]!.toUpperCase() + text.slice(1) : text;
}

// ---- Ids ---------------------------------------------------------------------

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A random id of `length` characters from [a-z0-9] (the API's id patterns all accept it). */
export function randomId(length: number, random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  return Array.from(random(length), (b) => ALPHABET[b % ALPHABET.length]).join("");
}

export const VISITOR_KEY = "tierdesk.visitor";

/**
 * The visitor's id for experiments and the upsell rollout: one per browser, kept in
 * localStorage so a visitor sees the same variant on every visit. Null when storage is
 * blocked (the page then shows list prices: no id, no experiment).
 */
export function visitorId(storage: Pick<Storage, "getItem" | "setItem"> | null): string | null {
  if (!storage) return null;
  try {
    const kept = storage.getItem(VISITOR_KEY);
    if (kept && /^v-[a-z0-9]{20}$/.test(kept)) return kept;
    const fresh = `v-${randomId(20)}`;
    storage.setItem(VISITOR_KEY, fresh);
    return fresh;
  } catch {
    return null;
  }
}

// ---- The plan handed to the portal ---------------------------------------------

export interface ChosenPlan {
  tierId: string;
  period: Period;
  addOns: string[];
  /** A promotion code an upsell offer gave, prefilled at checkout. */
  code?: string;
  /** The visitor id the prices were shown under (a pricing experiment's variant). */
  visitor?: string;
}

const SLUG = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const CODE = /^[A-Za-z0-9_-]{1,64}$/;
const VISITOR = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** The portal address that completes the purchase of `plan` (signing in first if needed). */
export function checkoutPath(plan: ChosenPlan): string {
  const q = new URLSearchParams({ plan: plan.tierId, period: plan.period });
  if (plan.addOns.length > 0) q.set("addOns", plan.addOns.join(","));
  if (plan.code) q.set("code", plan.code);
  if (plan.visitor) q.set("visitor", plan.visitor);
  return `/partner-portal?${q.toString()}`;
}

/** The plan in a portal address, or null when it names none or anything in it is malformed. */
export function planFromQuery(query: URLSearchParams): ChosenPlan | null {
  const tierId = query.get("plan");
  if (!tierId || !SLUG.test(tierId)) return null;
  const period = query.get("period") ?? "monthly";
  if (period !== "monthly" && period !== "yearly") return null;
  const addOns = (query.get("addOns") ?? "").split(",").filter((a) => a !== "");
  if (addOns.length > 10 || !addOns.every((a) => SLUG.test(a)) || new Set(addOns).size !== addOns.length) return null;
  const code = query.get("code") ?? undefined;
  const visitor = query.get("visitor") ?? undefined;
  if ((code !== undefined && !CODE.test(code)) || (visitor !== undefined && !VISITOR.test(visitor))) return null;
  return { tierId, period, addOns, ...(code ? { code } : {}), ...(visitor ? { visitor } : {}) };
}

// ---- Experiment conversion ----------------------------------------------------

export const PENDING_CONVERSION_KEY = "tierdesk.storefront.conversion";

export interface PendingConversion {
  experimentId: string;
  visitor: string;
  tierId: string;
}

/** The conversion the portal reports once the checkout it started has settled. */
export function readPendingConversion(raw: string | null): PendingConversion | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as Partial<PendingConversion>;
    if (typeof v.experimentId === "string" && /^exp_[0-9a-z]{26}$/.test(v.experimentId) && typeof v.visitor === "string" && VISITOR.test(v.visitor) && typeof v.tierId === "string") {
      return { experimentId: v.experimentId, visitor: v.visitor, tierId: v.tierId };
    }
  } catch {
    // not ours
  }
  return null;
}
