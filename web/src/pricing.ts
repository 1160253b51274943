// The quote builder's estimate while typing. The server prices every saved quote
// (docs/quotes.md "Pricing"); this mirrors its discount steps only so the builder
// can show the total and the authority notice before saving. The saved quote's
// figures are always the server's.

export interface DiscountLine {
  type: "percentage" | "fixed_amount";
  /** percent (two decimals) or cents */
  value: number;
}

/** Default discount caps by role (QUOTE_DISCOUNT_AUTHORITY); admins have none. */
export const DISCOUNT_AUTHORITY_PERCENT: Record<string, number | null> = {
  sales_rep: 15,
  sales_manager: 30,
  admin: null,
};

/** Each discount applies to what is left; percentages round half up to the cent; never below zero. */
export function estimate(subtotal: number, discounts: DiscountLine[]): { finalPrice: number; totalDiscount: number; discountPercent: number } {
  let price = subtotal;
  for (const d of discounts) {
    const off = d.type === "percentage" ? Math.floor((price * Math.round(d.value * 100) + 5000) / 10000) : Math.round(d.value);
    price = Math.max(0, price - Math.min(off, price));
  }
  const totalDiscount = subtotal - price;
  return { finalPrice: price, totalDiscount, discountPercent: subtotal > 0 ? (totalDiscount * 100) / subtotal : 0 };
}

/** True when the total discount is above the role's cap (the cap is inclusive). */
export function needsApproval(role: string, subtotal: number, totalDiscount: number): boolean {
  const cap = DISCOUNT_AUTHORITY_PERCENT[role];
  if (cap === null || cap === undefined) return false;
  // compared exactly: totalDiscount / subtotal > cap / 100
  return totalDiscount * 100 > cap * subtotal;
}

/** Roles that may grant limits above a tier's without approval (approve_custom_pricing). */
const GRANTS_CUSTOM_LIMITS = new Set(["sales_manager", "admin"]);

/** The custom limits that grant more than the tier does — above its limit, or on a
 * metric the tier does not include; an unlimited (null) metric grants everything
 * already. Empty for roles that may grant them, as the server decides (docs/quotes.md). */
export function limitsNeedingApproval(role: string, tierLimits: Record<string, number | null | undefined>, custom: Record<string, number>): string[] {
  if (GRANTS_CUSTOM_LIMITS.has(role)) return [];
  return Object.entries(custom)
    .filter(([name, value]) => {
      if (!(name in tierLimits)) return true;
      const limit = tierLimits[name];
      return limit !== null && limit !== undefined && value > limit;
    })
    .map(([name]) => name);
}
