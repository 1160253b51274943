// Pages anyone may open without signing in (the paths are in public-paths.ts).
// main.tsx renders these before, and instead of, the console's sign-in, so a prospect
// or a visitor never meets a sign-in screen, and a signed-in staff member opening the
// same link sees exactly what they see: the pages read no session and send no token.
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { publicRoute } from "./public-paths";
import { QuoteLinkPage } from "./prospect/quote";
import { useLocation } from "./router";
import { Loading } from "./ui";

/** The public page for `path`, or null for every console path (those sign in first). */
export function publicPage(path: string): JSX.Element | null {
  return publicRoute(path) ? <PublicPages /> : null;
}

type StorefrontPage = typeof import("./storefront/page").StorefrontPage;
let storefront: StorefrontPage | null = null;

/** Follows the address: the storefront moves between segments without a reload. */
function PublicPages() {
  const { path } = useLocation();
  const route = publicRoute(path);
  if (route?.page === "quote") return <QuoteLinkPage token={route.token} />;
  if (route?.page === "pricing") return <Storefront segmentId={route.segmentId} />;
  // A link from a public page into the console: the console signs in first.
  window.location.assign(path);
  return null;
}

/** The storefront is its own chunk: the quote page and the console never load it. */
function Storefront({ segmentId }: { segmentId: string | null }) {
  const [, setLoaded] = useState(0);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    if (storefront) return;
    import("./storefront/page").then(
      (m) => {
        storefront = m.StorefrontPage;
        setLoaded(1);
      },
      () => setFailed(true),
    );
  }, []);
  if (storefront) {
    const Page = storefront;
    return <Page segmentId={segmentId} />;
  }
  if (failed) {
    return (
      <div class="signed-out" role="alert">
        <div class="card">
          <h1>The pricing page could not be loaded</h1>
          <button type="button" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </div>
      </div>
    );
  }
  return <Loading what="Loading plans" />;
}
