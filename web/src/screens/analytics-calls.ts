// The Analytics screen's API calls, in the main bundle (a few hundred bytes) so
// main.tsx can start the first render's three calls beside the screen's chunk and
// Chart.js instead of after them.
import { api, ok, type Schemas } from "../api/client";
import { claim, startEarly } from "../api/early";
import { lastMonths, type MonthRange } from "../format";

/** Revenue figures come only for roles with view_revenue_metrics; a 403 is not an error here. */
export async function optional<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (e && typeof e === "object" && "status" in e && (e as { status: number }).status === 403) return null;
    throw e;
  }
}

export type Summary = Schemas["AnalyticsSummary"];

const calls = {
  summary: () => ok(api.GET("/api/admin/tiers/analytics")),
  movements: (r: MonthRange) =>
    optional(ok(api.GET("/api/admin/analytics/movements", { params: { query: { from: r.from, to: r.to } } }))),
  cohorts: (r: MonthRange) => ok(api.GET("/api/admin/analytics/cohorts", { params: { query: { from: r.from, to: r.to } } })),
};

/** The range the screen opens on. */
export function openingRange(now: Date): MonthRange {
  return lastMonths(12, now);
}

export function startAnalyticsCalls(now: Date): void {
  const r = openingRange(now);
  startEarly("analytics:summary", calls.summary);
  startEarly(`analytics:movements:${r.from}:${r.to}`, () => calls.movements(r));
  startEarly(`analytics:cohorts:${r.from}:${r.to}`, () => calls.cohorts(r));
}

export const loadSummary = () => claim("analytics:summary", calls.summary);
export const loadMovements = (r: MonthRange) => claim(`analytics:movements:${r.from}:${r.to}`, () => calls.movements(r));
export const loadCohorts = (r: MonthRange) => claim(`analytics:cohorts:${r.from}:${r.to}`, () => calls.cohorts(r));
