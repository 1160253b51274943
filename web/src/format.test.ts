import { describe, expect, it } from "vitest";
import { addMonths, checkRange, formatDateTime, formatMoney, lastMonths, parseMoney, formatMonth } from "./format";

describe("formatMoney", () => {
  it("formats integer cents", () => {
    expect(formatMoney(123456, "usd")).toBe("$1,234.56");
    expect(formatMoney(5, "usd")).toBe("$0.05");
    expect(formatMoney(-2550, "usd")).toBe("-$25.50");
    expect(formatMoney(0, "usd")).toBe("$0.00");
  });
  it("keeps large amounts exact", () => {
    expect(formatMoney(900719925474099, "usd")).toBe("$9,007,199,254,740.99");
  });
  it("drops cents when asked, rounding half away", () => {
    expect(formatMoney(123456, "usd", { whole: true })).toBe("$1,235");
  });
  it("knows currencies without minor units", () => {
    expect(formatMoney(1500, "jpy")).toBe("¥1,500");
    expect(formatMoney(1999, "eur")).toBe("€19.99");
  });
  it("shows a missing (redacted) amount as a dash, never zero", () => {
    expect(formatMoney(undefined)).toBe("—");
    expect(formatMoney(null)).toBe("—");
  });
  it("refuses fractional cents", () => {
    expect(() => formatMoney(10.5)).toThrow(/integer/);
  });
});

describe("parseMoney", () => {
  it("reads typed prices as cents", () => {
    expect(parseMoney("49")).toBe(4900);
    expect(parseMoney("49.9")).toBe(4990);
    expect(parseMoney("$1,200.05")).toBe(120005);
    expect(parseMoney("0.07")).toBe(7);
  });
  it("rejects what is not a price", () => {
    expect(parseMoney("")).toBeNull();
    expect(parseMoney("12.345")).toBeNull();
    expect(parseMoney("-3")).toBeNull();
    expect(parseMoney("abc")).toBeNull();
    expect(parseMoney("10.5", "jpy")).toBeNull();
  });
});

describe("month ranges", () => {
  const now = new Date("2026-03-15T12:00:00Z");
  it("steps across years", () => {
    expect(addMonths("2026-01", -1)).toBe("2025-12");
    expect(addMonths("2025-12", 1)).toBe("2026-01");
    expect(addMonths("2026-03", -24)).toBe("2024-03");
  });
  it("last n months end with the current UTC month", () => {
    expect(lastMonths(12, now)).toEqual({ from: "2025-04", to: "2026-03" });
    expect(lastMonths(1, now)).toEqual({ from: "2026-03", to: "2026-03" });
    // capped at the API's 24 months
    expect(lastMonths(60, now)).toEqual({ from: "2024-04", to: "2026-03" });
  });
  it("uses UTC, not the local day", () => {
    expect(lastMonths(1, new Date("2026-03-31T23:30:00Z")).to).toBe("2026-03");
  });
  it("checks typed ranges", () => {
    expect(checkRange("2025-01", "2025-06", now)).toEqual({ from: "2025-01", to: "2025-06" });
    expect(checkRange("2025-07", "2025-06", now)).toMatchObject({ field: "from" });
    expect(checkRange("2025-01", "2026-04", now)).toMatchObject({ field: "to" });
    expect(checkRange("2023-01", "2026-03", now)).toMatchObject({ field: "from", problem: "At most 24 months" });
    expect(checkRange("2025-13", "2026-01", now)).toMatchObject({ field: "from" });
  });
  it("names months", () => {
    expect(formatMonth("2026-03")).toBe("Mar 2026");
  });
});

describe("formatDateTime", () => {
  it("shows the minute in UTC, on a 24-hour clock", () => {
    expect(formatDateTime("2026-03-04T17:05:59Z")).toBe("Mar 4, 2026, 17:05 UTC");
    expect(formatDateTime("2026-03-04T00:30:00+02:00")).toBe("Mar 3, 2026, 22:30 UTC");
    expect(formatDateTime("2026-03-04T00:07:00Z")).toBe("Mar 4, 2026, 00:07 UTC");
  });
  it("passes through what it cannot read, and shows a dash for nothing", () => {
    expect(formatDateTime("soon")).toBe("soon");
    expect(formatDateTime(undefined)).toBe("—");
  });
});
