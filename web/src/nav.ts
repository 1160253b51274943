// Which screens each role may use. The API enforces every permission; this only
// keeps the console from offering a screen whose calls would all be refused
// (shared/src/domain/permissions.rs: reps have tier view, analytics without revenue,
// quotes, customer info and leads; managers everything but system config and usage).
import type { Role } from "./auth";

export interface Screen {
  path: string;
  label: string;
  roles: Role[];
}

const STAFF: Role[] = ["sales_rep", "sales_manager", "admin"];
const MANAGERS: Role[] = ["sales_manager", "admin"];

export const SCREENS: Screen[] = [
  { path: "/analytics", label: "Analytics", roles: STAFF },
  { path: "/tiers", label: "Tiers", roles: STAFF },
  { path: "/partners", label: "Partners", roles: STAFF },
  { path: "/subscriptions", label: "Subscriptions", roles: STAFF },
  { path: "/invoices", label: "Invoices", roles: STAFF },
  { path: "/journeys", label: "Journeys", roles: STAFF },
  { path: "/promotions", label: "Promotions", roles: MANAGERS },
  { path: "/quotes", label: "Quotes", roles: STAFF },
  { path: "/experiments", label: "Experiments", roles: MANAGERS },
  { path: "/forecast", label: "Forecast", roles: MANAGERS },
];

export function screensFor(role: Role): Screen[] {
  return SCREENS.filter((s) => s.roles.includes(role));
}

/** The screen a path belongs to (`/partners/p1` → Partners), if any. */
export function screenOf(path: string): Screen | undefined {
  return SCREENS.find((s) => path === s.path || path.startsWith(`${s.path}/`));
}

export function homeOf(role: Role): string {
  return role === "partner" ? "/partner-portal" : "/analytics";
}
