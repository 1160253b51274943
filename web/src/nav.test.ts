import { describe, expect, it } from "vitest";
import { screenOf, screensFor } from "./nav";

describe("role-aware navigation", () => {
  it("offers reps no promotions, experiments or forecast", () => {
    const labels = screensFor("sales_rep").map((s) => s.label);
    expect(labels).toEqual(["Analytics", "Tiers", "Partners", "Subscriptions", "Invoices", "Journeys", "Quotes"]);
  });
  it("offers managers and admins every screen", () => {
    expect(screensFor("sales_manager")).toHaveLength(10);
    expect(screensFor("admin")).toHaveLength(10);
  });
  it("offers partners none of the staff screens", () => {
    expect(screensFor("partner")).toEqual([]);
  });
  it("finds the screen of a nested path", () => {
    expect(screenOf("/partners/prt_1")?.label).toBe("Partners");
    expect(screenOf("/partnersx")).toBeUndefined();
  });
});
