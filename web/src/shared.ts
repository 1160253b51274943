// Loads and checks that several screens use. Kept out of any one screen's module so a
// screen's chunk never pulls in another screen (each screen is loaded on its own).
import { api, ok } from "./api/client";
import { currentSession } from "./auth";
import { useAsync } from "./ui";

/** The tier catalog (staff view, first 100): selectors and filters on several screens. */
export function useTiers() {
  return useAsync(() => ok(api.GET("/api/admin/tiers", { params: { query: { limit: 100 } } })), []);
}

export function isManager(): boolean {
  const role = currentSession()?.role;
  return role === "sales_manager" || role === "admin";
}
