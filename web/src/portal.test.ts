import { describe, expect, it } from "vitest";
import {
  cancelledTermRunning,
  hasRunningSubscription,
  keptPrice,
  paymentNotice,
  planChoices,
  portalPartnerId,
  returnUrls,
  usageShare,
  yearlySaving,
  type CatalogTier,
  type Subscription,
} from "./portal";

function tier(tierId: string, tierLevel: number, monthly: number, yearly = monthly * 10): CatalogTier {
  return {
    tierId,
    name: tierId,
    description: "",
    type: "individual",
    isPremium: monthly > 0,
    segment: "standard",
    tierLevel,
    popular: false,
    sortOrder: 10,
    prices: { monthly, yearly },
    currency: "usd",
    commitmentMonths: 0,
    pcrMultiplier: 1,
    limits: {},
    features: [],
  } as unknown as CatalogTier;
}

function sub(extra: Partial<Subscription>): Subscription {
  return {
    partnerId: "prt_1",
    tierId: "gold",
    status: "active",
    billingPeriod: "monthly",
    pricePerPeriod: 360_000,
    currency: "usd",
    mrr: 360_000,
    subscriptionStartDate: "2026-11-01",
    subscriptionEndDate: "2026-12-01",
    trialEndDate: null,
    autoRenewal: true,
    cancellationDate: null,
    scheduledChange: null,
    paymentStatus: "current",
    lastPaymentDate: null,
    lastPaymentAmount: null,
    paymentFailures: 0,
    totalPaid: 0,
    stripeCustomerId: "cus_1",
    stripeSubscriptionId: "sub_1",
    paymentMethod: null,
    ...extra,
  } as Subscription;
}

const catalog = [tier("free", 1, 0, 0), tier("gold", 2, 360_000), tier("silver", 2, 200_000), tier("platinum", 3, 600_000)];
// Another segment's tier: level 1, but dearer than anything above.
const luxury = { ...tier("luxury-select", 1, 1_500_000), segment: "luxury" } as CatalogTier;

describe("partner portal rules", () => {
  it("offers paid tiers above and below by level, then monthly price", () => {
    const { up, down } = planChoices(catalog, "gold");
    expect(up.map((t) => t.tierId)).toEqual(["platinum"]);
    expect(down.map((t) => t.tierId)).toEqual(["silver"]);
    expect(planChoices(catalog, "free").up.map((t) => t.tierId)).toEqual(["silver", "gold", "platinum"]);
    // No current tier (a lapsed term choosing again): every paid tier, the free one never.
    expect(planChoices(catalog, "").up.map((t) => t.tierId)).toEqual(["silver", "gold", "platinum"]);
    // A paid tier's moves stay in its segment; a free partner may start anywhere.
    const both = [...catalog, luxury];
    expect(planChoices(both, "platinum").down.map((t) => t.tierId)).toEqual(["silver", "gold"]);
    expect(planChoices(both, "gold").up.map((t) => t.tierId)).toEqual(["platinum"]);
    expect(planChoices(both, "free").up.map((t) => t.tierId)).toContain("luxury-select");
  });
  it("changes plans only on a running Stripe subscription", () => {
    expect(hasRunningSubscription(sub({}))).toBe(true);
    expect(hasRunningSubscription(sub({ status: "past_due" }))).toBe(true);
    expect(hasRunningSubscription(sub({ status: "cancelled" }))).toBe(false);
    expect(hasRunningSubscription(sub({ stripeSubscriptionId: null }))).toBe(false);
    // Cancelled at the period end: the term runs to its end date; a new plan must wait.
    const cancelled = sub({ status: "cancelled", subscriptionEndDate: "2026-12-20" });
    expect(cancelledTermRunning(cancelled, "2026-12-06")).toBe(true);
    expect(cancelledTermRunning(cancelled, "2026-12-21")).toBe(false);
    expect(cancelledTermRunning(sub({}), "2026-12-06")).toBe(false);
  });
  it("says plainly when the partner keeps an older price", () => {
    const gold = catalog[1]!;
    expect(keptPrice(sub({ pricePerPeriod: 300_000 }), gold)).toEqual({ paying: 300_000, today: 360_000 });
    expect(keptPrice(sub({}), gold)).toBeNull();
    expect(keptPrice(sub({ billingPeriod: null, pricePerPeriod: 0 }), gold)).toBeNull();
    expect(keptPrice(sub({ billingPeriod: "yearly", pricePerPeriod: 3_600_000 }), gold)).toBeNull();
    // Today's price is the one after the pricing rules: a subscriber who paid the
    // ruled price keeps nothing special.
    const ruled = { listPrice: 360_000, steps: [{ ruleId: "holiday", name: "Holiday", before: 360_000, after: 396_000 }], clampedBy: null, price: 396_000 };
    const goldRuled: CatalogTier = { ...gold, pricing: { monthly: ruled, yearly: { ...ruled, listPrice: 3_600_000, steps: [], price: 3_600_000 } } };
    expect(keptPrice(sub({ pricePerPeriod: 396_000 }), goldRuled)).toBeNull();
    expect(keptPrice(sub({ pricePerPeriod: 360_000 }), goldRuled)).toEqual({ paying: 360_000, today: 396_000 });
  });
  it("names the dunning step", () => {
    expect(paymentNotice(sub({}))).toBeNull();
    expect(paymentNotice(sub({ status: "past_due", paymentFailures: 1 }))?.text).toContain("1 attempt)");
    expect(paymentNotice(sub({ status: "past_due", paymentFailures: 3 }))?.level).toBe("error");
    expect(paymentNotice(sub({ status: "trialing", trialEndDate: "2026-12-20" }))?.text).toContain("2026-12-20");
  });
  it("measures the yearly saving and usage bars in whole numbers", () => {
    expect(yearlySaving(tier("x", 1, 10_000, 100_000))).toBe(20_000);
    expect(yearlySaving(tier("x", 1, 10_000, 130_000))).toBe(0);
    expect(usageShare(5, 10)).toBe(50);
    expect(usageShare(15, 10)).toBe(100);
    expect(usageShare(3, null)).toBeNull();
    expect(usageShare(1, 0)).toBe(100);
  });
  it("reads the portal path and builds Stripe's return addresses", () => {
    expect(portalPartnerId("")).toBeNull();
    expect(portalPartnerId("prt_1")).toBe("prt_1");
    expect(portalPartnerId("%E0%A4%A")).toBe("%E0%A4%A");
    expect(returnUrls("http://127.0.0.1:3000", "checkout").successUrl).toBe(
      "http://127.0.0.1:3000/partner-portal?checkout=done&session_id={CHECKOUT_SESSION_ID}",
    );
  });
});
