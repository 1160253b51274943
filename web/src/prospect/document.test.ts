import { describe, expect, it } from "vitest";
import { formatMoney } from "../format";
import { closedNotice, isOpen, quoteLines, type PublicQuote } from "./document";

const base: PublicQuote = {
  quoteNumber: "Q-2026-007",
  prospectName: "Ada Buyer",
  baseTier: "gold",
  baseTierName: "Gold",
  billingPeriod: "yearly",
  basePrice: 360000,
  currency: "usd",
  customizations: {
    additionalListings: { quantity: 5, pricePerUnit: 12000, total: 60000 },
    customFeatures: [{ featureId: "sso", name: "Single sign-on", price: 120000 }],
    customLimits: { leads: 150 },
  },
  discounts: [
    { type: "percentage", value: 10, reason: "multi-year", amount: 54000 },
    { type: "fixed_amount", value: 25000, reason: "launch", amount: 25000 },
  ],
  subtotal: 540000,
  totalDiscount: 79000,
  finalPrice: 461000,
  pricePerMonth: 38417,
  validUntil: "2026-12-30",
  termsAndConditions: "Prices exclude tax.",
  status: "sent",
};
const money = (c: number) => formatMoney(c, "usd");
const date = (v: string | undefined) => v ?? "?";

describe("the quote document", () => {
  it("lists the plan, add-ons, included limits, subtotal, discounts in order and the total, in cents", () => {
    const lines = quoteLines(base, money);
    expect(lines.map((l) => [l.kind, l.amount])).toEqual([
      ["base", 360000],
      ["addon", 60000],
      ["addon", 120000],
      ["limit", null],
      ["subtotal", 540000],
      ["discount", -54000],
      ["discount", -25000],
      ["total", 461000],
    ]);
    expect(lines[1]?.label).toBe("Additional listings: 5 × $120.00");
    expect(lines[3]?.label).toBe("Leads: up to 150");
    expect(lines[5]?.label).toBe("Discount 10%: multi-year");
    expect(lines[6]?.label).toBe("Discount $250.00: launch");
    expect(lines[7]?.label).toBe("Total per year");
    // the lines add up to the total the server computed
    expect(lines.filter((l) => l.kind !== "subtotal" && l.kind !== "total").reduce((s, l) => s + (l.amount ?? 0), 0)).toBe(461000);
  });
  it("has no subtotal line without discounts", () => {
    const plain = { ...base, billingPeriod: "monthly" as const, customizations: {}, discounts: [], subtotal: 30000, basePrice: 30000, finalPrice: 30000 };
    expect(quoteLines(plain, money).map((l) => l.kind)).toEqual(["base", "total"]);
    expect(quoteLines(plain, money)[1]?.label).toBe("Total per month");
  });
  it("offers answers only while sent, and says plainly why not otherwise", () => {
    expect(isOpen(base)).toBe(true);
    expect(closedNotice(base, date)).toBeNull();
    const said = (status: PublicQuote["status"], extra: Partial<PublicQuote> = {}) => {
      const q = { ...base, status, ...extra };
      expect(isOpen(q)).toBe(false);
      return closedNotice(q, date)?.title;
    };
    expect(said("accepted", { acceptedAt: "2026-12-05T10:00:00.000Z" })).toBe("This quote has already been accepted");
    expect(said("expired")).toBe("This quote has expired");
    expect(said("cancelled")).toBe("This quote was withdrawn");
    expect(said("rejected")).toBe("This quote was declined");
    expect(closedNotice({ ...base, status: "expired" }, date)?.text).toContain("2026-12-30");
  });
});
