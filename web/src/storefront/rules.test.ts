import { describe, expect, it } from "vitest";
import { limitLabel, limitNoun } from "../limits";
import {
  bestYearlySavingPercent,
  capacityText,
  checkoutPath,
  planFromQuery,
  priceReasons,
  randomId,
  sentence,
  readPendingConversion,
  shownPrice,
  stepPercent,
  visitorId,
  yearlySaving,
} from "./rules";

const gold = {
  prices: { monthly: 360_000, yearly: 3_600_000 },
  pricing: {
    monthly: { listPrice: 360_000, steps: [{ ruleId: "peak", name: "Peak season", before: 360_000, after: 432_000 }], clampedBy: null, price: 432_000 },
    yearly: { listPrice: 3_600_000, steps: [], clampedBy: null, price: 3_600_000 },
  },
};

describe("prices", () => {
  it("shows the ruled price, and the list price when the tier has no pricing", () => {
    expect(shownPrice(gold, "monthly")).toBe(432_000);
    expect(shownPrice(gold, "yearly")).toBe(3_600_000);
    expect(shownPrice({ prices: gold.prices }, "monthly")).toBe(360_000);
  });

  it("says each rule's step with its sign, one decimal only when needed", () => {
    expect(stepPercent(360_000, 432_000)).toBe("+20%");
    expect(stepPercent(100_000, 85_000)).toBe("−15%");
    expect(stepPercent(300, 301)).toBe("+0.3%");
    expect(stepPercent(0, 5)).toBe("");
    expect(priceReasons(gold.pricing.monthly)).toEqual(["Peak season +20%"]);
    expect(priceReasons({ ...gold.pricing.yearly, clampedBy: "competitiveThreshold" })).toEqual(["capped to stay competitive"]);
    expect(priceReasons(undefined)).toEqual([]);
  });

  it("counts the yearly saving against twelve of today's monthly prices, never below zero", () => {
    expect(yearlySaving(gold)).toBe(432_000 * 12 - 3_600_000);
    expect(yearlySaving({ prices: { monthly: 100, yearly: 1_300 } })).toBe(0);
    // 5,184,000 − 3,600,000 = 1,584,000 of 5,184,000 = 30.5 % → 30
    expect(bestYearlySavingPercent([gold, { prices: { monthly: 0, yearly: 0 } }])).toBe(30);
    expect(bestYearlySavingPercent([])).toBe(0);
  });

  it("states the headline capacity, unlimited included", () => {
    expect(capacityText({ capacityLimit: "listings", limits: { listings: 1500 } }, limitNoun)).toBe("Up to 1,500 listings");
    expect(capacityText({ capacityLimit: "listings", limits: { listings: 1 } }, limitNoun)).toBe("Up to 1 listing");
    expect(capacityText({ capacityLimit: "listings", limits: { listings: null } }, limitNoun)).toBe("Unlimited listings");
    expect(capacityText({ capacityLimit: "maxGuests", limits: { maxGuests: 50 } }, limitNoun)).toBe("Up to 50 guests");
    expect(capacityText({ capacityLimit: null, limits: {} }, limitNoun)).toBeNull();
    expect(limitLabel("maxGuests")).toBe("Max guests");
    expect(limitLabel("aiResponses")).toBe("AI responses");
    expect(sentence("viewing a level-1 tier")).toBe("Viewing a level-1 tier");
  });
});

describe("ids", () => {
  it("draws ids from [a-z0-9] of the asked length", () => {
    expect(randomId(5, () => new Uint8Array([0, 25, 26, 35, 36]))).toBe("az09a");
    expect(randomId(24)).toMatch(/^[a-z0-9]{24}$/);
  });

  it("keeps one visitor id per browser and replaces a malformed one", () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const first = visitorId(storage);
    expect(first).toMatch(/^v-[a-z0-9]{20}$/);
    expect(visitorId(storage)).toBe(first);
    store.set("tierdesk.visitor", "v-<script>");
    expect(visitorId(storage)).not.toBe("v-<script>");
    expect(visitorId(null)).toBeNull();
    const blocked = { getItem: () => { throw new Error("blocked"); }, setItem: () => undefined };
    expect(visitorId(blocked)).toBeNull();
  });
});

describe("the plan handed to the portal", () => {
  it("round-trips through the portal address", () => {
    const plan = { tierId: "gold", period: "yearly" as const, addOns: ["photo-pack", "priority-support"], code: "SAVE10", visitor: "v-abc" };
    const path = checkoutPath(plan);
    expect(path.startsWith("/partner-portal?")).toBe(true);
    expect(planFromQuery(new URLSearchParams(path.split("?")[1]))).toEqual(plan);
    expect(planFromQuery(new URLSearchParams("plan=gold"))).toEqual({ tierId: "gold", period: "monthly", addOns: [] });
  });

  it("refuses anything malformed rather than guessing", () => {
    for (const q of ["", "plan=Gold!", "plan=gold&period=weekly", "plan=gold&addOns=a,a", "plan=gold&code=x y", "plan=gold&visitor=a#b", `plan=gold&addOns=${"a,".repeat(11)}a`]) {
      expect(planFromQuery(new URLSearchParams(q)), q).toBeNull();
    }
  });

  it("reads back only a well-formed pending conversion", () => {
    const ok = { experimentId: `exp_${"a".repeat(26)}`, visitor: "v-1", tierId: "gold" };
    expect(readPendingConversion(JSON.stringify(ok))).toEqual(ok);
    expect(readPendingConversion(JSON.stringify({ ...ok, experimentId: "exp_x" }))).toBeNull();
    expect(readPendingConversion("{")).toBeNull();
    expect(readPendingConversion(null)).toBeNull();
  });
});
