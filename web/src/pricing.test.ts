import { describe, expect, it } from "vitest";
import { estimate, needsApproval } from "./pricing";

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
