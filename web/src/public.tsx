// Pages anyone may open without signing in (the paths are in public-paths.ts).
// main.tsx renders these before, and instead of, the console's sign-in, so a prospect
// never meets a sign-in screen, and a signed-in staff member opening the same link
// sees exactly what the prospect sees: the page reads no session and sends no token.
import type { JSX } from "preact";
import { publicRoute } from "./public-paths";
import { QuoteLinkPage } from "./prospect/quote";

/** The public page for `path`, or null for every console path (those sign in first). */
export function publicPage(path: string): JSX.Element | null {
  const route = publicRoute(path);
  if (route?.page === "quote") return <QuoteLinkPage token={route.token} />;
  return null;
}
