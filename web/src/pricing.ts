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
