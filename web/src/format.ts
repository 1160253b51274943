// Display formatting. Money stays integer minor units (cents) everywhere in the app
// and becomes text only here.

const fractionDigitsCache = new Map<string, number>();

/** Minor-unit digits of a currency (2 for usd, 0 for jpy), as Intl knows them. */
export function minorUnitDigits(currency: string): number {
  const code = currency.toUpperCase();
  let digits = fractionDigitsCache.get(code);
  if (digits === undefined) {
    digits = new Intl.NumberFormat("en-US", { style: "currency", currency: code }).resolvedOptions()
      .maximumFractionDigits ?? 2;
    fractionDigitsCache.set(code, digits);
  }
  return digits;
}

/**
 * An integer amount of minor units as money text: `formatMoney(123456, "usd")` is
 * "$1,234.56". `whole` drops the cents for large figures on cards. A missing amount
 * (the API redacts revenue for some roles) is an em dash, never "$0".
 */
export function formatMoney(
  minor: number | null | undefined,
  currency = "usd",
  opts: { whole?: boolean; locale?: string } = {},
): string {
  if (minor === null || minor === undefined || !Number.isFinite(minor)) return "—";
  if (!Number.isInteger(minor)) throw new Error(`money must be integer minor units, got ${minor}`);
  const code = currency.toUpperCase();
  const digits = minorUnitDigits(code);
  const shown = opts.whole ? 0 : digits;
  // Split into whole and fraction with integer arithmetic so large amounts never
  // pick up floating-point noise.
  const scale = 10 ** digits;
  const value = Math.trunc(minor / scale) + (minor % scale) / scale;
  return new Intl.NumberFormat(opts.locale ?? "en-US", {
    style: "currency",
    currency: code,
    minimumFractionDigits: shown,
    maximumFractionDigits: shown,
  }).format(value);
}

/** Text typed into a price field ("12.50", "1,200") as integer minor units, or null. */
export function parseMoney(text: string, currency = "usd"): number | null {
  const cleaned = text.replace(/[,\s$€£]/g, "");
  const digits = minorUnitDigits(currency);
  const m = digits > 0 ? /^(\d+)(?:\.(\d+))?$/.exec(cleaned) : /^(\d+)$/.exec(cleaned);
  if (!m) return null;
  const frac = m[2] ?? "";
  if (frac.length > digits) return null;
  return Number(m[1]) * 10 ** digits + Number(frac.padEnd(digits, "0") || "0");
}

export function formatPercent(value: number | null | undefined, fractionDigits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return `${value.toFixed(fractionDigits)}%`;
}

export function formatCount(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return new Intl.NumberFormat("en-US").format(value);
}

/** `YYYY-MM` of a date, in UTC (the API's months are UTC). */
export function monthOf(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** The month `n` months after `month` (`YYYY-MM`), n may be negative. */
export function addMonths(month: string, n: number): string {
  const [y, m] = month.split("-").map(Number) as [number, number];
  const index = y * 12 + (m - 1) + n;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
}

export interface MonthRange {
  from: string;
  to: string;
}

/** The API accepts at most 24 months up to `to`. */
export const MAX_RANGE_MONTHS = 24;

/** The last `months` months ending with the current UTC month. */
export function lastMonths(months: number, now: Date): MonthRange {
  const n = Math.min(Math.max(1, Math.trunc(months)), MAX_RANGE_MONTHS);
  const to = monthOf(now);
  return { from: addMonths(to, -(n - 1)), to };
}

/**
 * A range typed by a person: `from` and `to` ordered, `to` not after the current
 * month and at most 24 months long. Returns the problem instead when it cannot be.
 */
export function checkRange(from: string, to: string, now: Date): MonthRange | { problem: string; field: "from" | "to" } {
  const re = /^\d{4}-(0[1-9]|1[0-2])$/;
  if (!re.test(from)) return { problem: "Pick a month", field: "from" };
  if (!re.test(to)) return { problem: "Pick a month", field: "to" };
  if (to > monthOf(now)) return { problem: "Cannot be after this month", field: "to" };
  if (from > to) return { problem: "Must not be after the last month", field: "from" };
  if (addMonths(to, -(MAX_RANGE_MONTHS - 1)) > from) return { problem: `At most ${MAX_RANGE_MONTHS} months`, field: "from" };
  return { from, to };
}

/** "2026-03" as "Mar 2026". */
export function formatMonth(month: string): string {
  const [y, m] = month.split("-").map(Number) as [number, number];
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString("en-US", { month: "short", year: "numeric", timeZone: "UTC" });
}

/** An RFC 3339 timestamp or a `YYYY-MM-DD` date as a short UTC date. */
export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(d.getTime())) return value;
  return d.toLocaleDateString("en-US", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
}

/** A timestamp to the minute, in UTC (price changes on one day must stay apart). */
export function formatDateTime(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const time = d.toLocaleTimeString("en-US", { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC" });
  return `${formatDate(value)}, ${time} UTC`;
}
