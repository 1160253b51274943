"""`make bench` for the console: per screen, the API calls its first render makes,
the server time of the slowest, and the time to a rendered screen (p50/p95 of
RUNS loads, a fresh page load each, signed in as a sales manager, and the partner
portal as a seeded partner with invoices); where that time
goes (the screen's code loaded, first API call sent, last API answer in); the
JavaScript each screen's first render loaded; and the built chunks with their gzip
sizes. Figures, not a test: it asserts nothing about speed.

Run by infra/web-e2e.sh --bench against its private stack (`make bench` gives it the
release-build dev gateway; alone it uses the debug build).
"""

import glob
import gzip
import os
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from conftest import BASE, CHROMIUM, DESKTOP, api, dev_token  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

RUNS = int(os.environ.get("CONSOLE_BENCH_RUNS", "20"))
# screen path -> what is on the page once the screen has rendered all its data
SCREENS = {
    "/analytics": ["card-mrr", "revenue-chart", "funnel-chart", "movements-table", "cohorts-heatmap"],
    "/tiers": ["tiers-table"],
    "/partners": ["partners-table"],
    "/subscriptions": ["subscriptions-table"],
    "/journeys": ["journey-list"],
    "/promotions": ["promotions-table"],
    "/quotes": ["quotes-table"],
    "/experiments": ["experiments-table"],
    "/invoices": ["invoices-table", "invoice-totals"],
}
# The partner's own screens, signed in as a seeded partner that has invoices.
PARTNER_SCREENS = {
    "/partner-portal": ["current-tier", "usage-table", "portal-invoices", "features-available"],
}
# Public pages, no sign-in: the pricing storefront (its first render: the segment
# list and the first segment's page, both from the API's public cache).
PUBLIC_SCREENS = {
    "/pricing": ["segment-selector", "storefront-tiers"],
    "/pricing/luxury": ["segment-selector", "storefront-tiers"],
}
READY = "ids => ids.every(id => document.querySelector(`[data-testid=${id}]`))"
# Resource timing of the load (same origin, so request and response times are there).
ENTRIES = """() => performance.getEntriesByType('resource').map(e => ({
  path: new URL(e.name).pathname, url: e.name, start: e.startTime, requestStart: e.requestStart,
  end: e.responseEnd, size: e.encodedBodySize }))"""
DIST = os.path.join(os.path.dirname(__file__), "..", "dist")


def p95(values):
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def gzip_sizes():
    """Every built asset's gzip -9 size, by file name."""
    return {
        os.path.basename(f): len(gzip.compress(open(f, "rb").read(), 9))
        for f in glob.glob(os.path.join(DIST, "assets", "*"))
    }


def main():
    rows, loaded_by = [], {}
    gz = gzip_sizes()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        _, invoices = api("GET", "/api/admin/invoices?limit=1", dev_token("admin"))
        partner = invoices["items"][0]["partnerId"]
        plan = [("sales_manager", None, SCREENS), ("partner", partner, PARTNER_SCREENS)]
        # A visitor: a fresh context, never signed in (localStorage keeps one visitor id).
        ctx = browser.new_context(viewport=DESKTOP)
        measure(ctx.new_page(), PUBLIC_SCREENS, rows, loaded_by, gz)
        ctx.close()
        for role, partner_id, screens in plan:
            ctx = browser.new_context(viewport=DESKTOP)
            page = ctx.new_page()
            q = f"role={role}" + (f"&partner={partner_id}" if partner_id else "")
            page.goto(f"{BASE}/dev/sign-in?{q}")
            page.wait_for_selector("[data-testid=signed-in-role]")
            measure(page, screens, rows, loaded_by, gz)
            ctx.close()
        browser.close()
    report(rows, loaded_by, gz)


def measure(page, screens, rows, loaded_by, gz):
    """RUNS fresh loads of each screen: calls, slowest call, render time, JS loaded."""
    for path, ready in screens.items():
        renders, slowest, calls, dups = [], [], [], []
        js_done, api_first, api_last = [], [], []
        assets = set()
        for _ in range(RUNS):
            start = time.perf_counter()
            page.goto(f"{BASE}{path}")
            page.wait_for_function(READY, arg=ready, polling="raf")
            renders.append((time.perf_counter() - start) * 1000)
            # then every call of the first render is in (networkidle: 500 ms quiet)
            page.wait_for_load_state("networkidle")
            entries = page.evaluate(ENTRIES)
            api = [e for e in entries if e["path"].startswith("/api/")]
            js = [e for e in entries if e["path"].endswith(".js")]
            assets.update(os.path.basename(e["path"]) for e in entries if e["path"].startswith("/assets/"))
            calls.append(len(api))
            dups.append(len(api) - len({e["url"] for e in api}))
            slowest.append(max((e["end"] - e["requestStart"]) for e in api) if api else 0)
            js_done.append(max((e["end"] for e in js), default=0))
            api_first.append(min((e["start"] for e in api), default=0))
            api_last.append(max((e["end"] for e in api), default=0))
        for f in assets:
            loaded_by.setdefault(f, []).append(path)
        js_files = [f for f in assets if f.endswith(".js")]
        js_gz = sum(gz.get(f, 0) for f in js_files)
        rows.append({
            "path": path, "calls": max(calls), "dups": max(dups),
            "s50": statistics.median(slowest), "s95": p95(slowest),
            "r50": statistics.median(renders), "r95": p95(renders),
            "js": statistics.median(js_done), "first": statistics.median(api_first),
            "last": statistics.median(api_last), "files": len(js_files), "js_gz": js_gz,
        })


def report(rows, loaded_by, gz):
    print(f"\nConsole first render ({RUNS} loads per screen, sales_manager; the portal as a partner; the pricing pages as a visitor, no sign-in; seeded data, headless Chromium)")
    print("| screen | API calls (repeated) | slowest call p50 / p95 (ms) | rendered p50 / p95 (ms) "
          "| code in / first call / last answer p50 (ms) | JS loaded: files, gzip kB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['path']}` | {r['calls']} ({r['dups']}) | {r['s50']:.0f} / {r['s95']:.0f} "
              f"| {r['r50']:.0f} / {r['r95']:.0f} | {r['js']:.0f} / {r['first']:.0f} / {r['last']:.0f} "
              f"| {r['files']}, {r['js_gz'] / 1024:.1f} |")
    print("\nBuilt chunks (gzip -9) and the screens whose first render loaded them:")
    print("| file | gzip kB | loaded by |")
    print("|---|---|---|")
    every = set(SCREENS) | set(PARTNER_SCREENS) | set(PUBLIC_SCREENS)
    for name, size in sorted(gz.items(), key=lambda kv: (-kv[1], kv[0])):
        screens = loaded_by.get(name, [])
        who = "every screen" if set(screens) == every else (", ".join(f"`{s}`" for s in screens) or "none of these (Cognito mode only, or unused)")
        print(f"| {urllib.parse.quote(name)} | {size / 1024:.1f} | {who} |")
    total_js = sum(v for k, v in gz.items() if k.endswith(".js"))
    print(f"\nAll JavaScript together: {total_js / 1024:.1f} kB gzip in {sum(k.endswith('.js') for k in gz)} files.")


if __name__ == "__main__":
    main()
