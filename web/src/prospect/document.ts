// The quote as a document: its lines and what its status means for the prospect.
// Pure functions over the API's PublicQuote, so the unit tests hold them; amounts
// stay integer cents here and become text only in the page (format.ts).
import type { Schemas } from "../api/client";
import { limitLabel } from "../limits";

export type PublicQuote = Schemas["PublicQuote"];

export interface DocLine {
  label: string;
  /** Cents; negative for a discount; null for something included at no charge. */
  amount: number | null;
  kind: "base" | "addon" | "limit" | "subtotal" | "discount" | "total";
}

export function periodWord(q: Pick<PublicQuote, "billingPeriod">): "month" | "year" {
  return q.billingPeriod === "yearly" ? "year" : "month";
}

/** The document's table, top to bottom: the plan, add-ons, included limits, the
 * subtotal, each discount in the order the server applied it, and the total. */
export function quoteLines(q: PublicQuote, money: (cents: number) => string): DocLine[] {
  const lines: DocLine[] = [
    { label: `${q.baseTierName} plan, billed ${q.billingPeriod}`, amount: q.basePrice, kind: "base" },
  ];
  const c = q.customizations;
  const units = (what: string, line: { quantity: number; pricePerUnit: number; total: number } | undefined) => {
    if (line && line.quantity > 0) {
      lines.push({ label: `${what}: ${line.quantity} × ${money(line.pricePerUnit)}`, amount: line.total, kind: "addon" });
    }
  };
  units("Additional listings", c.additionalListings);
  units("Additional images per listing", c.additionalImages);
  for (const f of c.customFeatures ?? []) lines.push({ label: f.name, amount: f.price, kind: "addon" });
  for (const [metric, count] of Object.entries(c.customLimits ?? {})) {
    lines.push({ label: `${limitLabel(metric)}: up to ${count.toLocaleString("en-US")}`, amount: null, kind: "limit" });
  }
  if (q.discounts.length > 0) {
    lines.push({ label: "Subtotal", amount: q.subtotal, kind: "subtotal" });
    for (const d of q.discounts) {
      const terms = d.type === "percentage" ? `${d.value}%` : money(d.value);
      lines.push({ label: `Discount ${terms}: ${d.reason}`, amount: -d.amount, kind: "discount" });
    }
  }
  lines.push({ label: `Total per ${periodWord(q)}`, amount: q.finalPrice, kind: "total" });
  return lines;
}

/** Whether the prospect may still accept or decline: sent and within its validity
 * (the API already reports a lapsed sent quote as expired). */
export function isOpen(q: Pick<PublicQuote, "status">): boolean {
  return q.status === "sent";
}

/** What the status means, said plainly; null while the quote is open. */
export function closedNotice(
  q: Pick<PublicQuote, "status" | "acceptedAt" | "rejectedAt" | "validUntil">,
  date: (value: string | undefined) => string,
): { tone: "ok" | "warn" | "error"; title: string; text: string } | null {
  switch (q.status) {
    case "sent":
      return null;
    case "accepted":
      return {
        tone: "ok",
        title: "This quote has already been accepted",
        text: `It was accepted on ${date(q.acceptedAt)}. There is nothing more to do here; your sales contact has the details.`,
      };
    case "rejected":
      return {
        tone: "warn",
        title: "This quote was declined",
        text: `It was declined on ${date(q.rejectedAt)}. If you have changed your mind, ask your sales contact for a new quote.`,
      };
    case "expired":
      return {
        tone: "warn",
        title: "This quote has expired",
        text: `It was valid until ${date(q.validUntil)} and can no longer be accepted. Ask your sales contact for a new quote.`,
      };
    case "cancelled":
      return {
        tone: "error",
        title: "This quote was withdrawn",
        text: "The sales team cancelled it, so it can no longer be accepted. Ask your sales contact if you expected an offer.",
      };
    default:
      return {
        tone: "warn",
        title: "This quote is not open",
        text: "It cannot be accepted or declined from this link. Ask your sales contact.",
      };
  }
}
