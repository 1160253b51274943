import { describe, expect, it } from "vitest";
import { estimate, limitsNeedingApproval, needsApproval } from "./pricing";

describe("quote estimate", () => {
  it("applies discounts in order to what is left, half up", () => {
    // 10% of 360000 = 36000; then 5% of 324000 = 16200
    expect(estimate(360000, [{ type: "percentage", value: 10 }, { type: "percentage", value: 5 }])).toMatchObject({
      finalPrice: 307800,
      totalDiscount: 52200,
    });
    // 12.5% of 1001 cents = 125.125 → 125
    expect(estimate(1001, [{ type: "percentage", value: 12.5 }]).finalPrice).toBe(876);
    // 0.5 cent rounds up: 10% of 5 = 0.5 → 1
    expect(estimate(5, [{ type: "percentage", value: 10 }]).finalPrice).toBe(4);
  });
  it("never goes below zero", () => {
    expect(estimate(1000, [{ type: "fixed_amount", value: 5000 }]).finalPrice).toBe(0);
  });
  it("holds the total against the role's inclusive cap", () => {
    expect(needsApproval("sales_rep", 100000, 15000)).toBe(false);
    expect(needsApproval("sales_rep", 100000, 15001)).toBe(true);
    expect(needsApproval("sales_manager", 100000, 30000)).toBe(false);
    expect(needsApproval("sales_manager", 100000, 30001)).toBe(true);
    expect(needsApproval("admin", 100000, 90000)).toBe(false);
  });
});

describe("custom limits that need approval", () => {
  const gold = { listings: 10, leads: 200, aiResponses: null };
  it("names limits above the tier's or on a metric the tier lacks, for a rep", () => {
    expect(limitsNeedingApproval("sales_rep", gold, { listings: 11, leads: 200, aiResponses: 99999, seats: 1 })).toEqual(["listings", "seats"]);
  });
  it("accepts limits at or below the tier's", () => {
    expect(limitsNeedingApproval("sales_rep", gold, { listings: 10, leads: 5 })).toEqual([]);
  });
  it("needs nothing from a role that may grant custom pricing", () => {
    expect(limitsNeedingApproval("sales_manager", gold, { listings: 500 })).toEqual([]);
    expect(limitsNeedingApproval("admin", gold, { seats: 5 })).toEqual([]);
  });
});
