// The invoice screen's pure rules (unit-tested without a DOM).
import type { Schemas } from "./api/client";

export type Status = Schemas["InvoiceBillingStatus"];
export type Action = "send" | "pay" | "void" | "refund";

/** Which actions an invoice in this status allows (the API checks again). */
export function actionsFor(status: Status): Action[] {
  switch (status) {
    case "open":
      return ["send", "pay", "void"];
    case "uncollectible":
      return ["send", "pay"];
    case "paid":
    case "partially_refunded":
      return ["send", "refund"];
    case "refunded":
      return ["send"];
    default:
      return [];
  }
}

/** `prt_01m94pnq…811anj`: enough of an id to tell rows apart; the title holds all of it. */
export function shortId(id: string): string {
  return id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id;
}

