"""`make bench` for the console: per screen, the API calls its first render makes,
the server time of the slowest, and the time to a rendered screen (p50/p95 of
RUNS loads, a fresh page load each, signed in as a sales manager), plus the
built bundle's gzip size. Figures, not a test: it asserts nothing about speed.

Run by infra/web-e2e.sh --bench against its private stack.
"""

import glob
import gzip
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from conftest import BASE, CHROMIUM, DESKTOP  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

RUNS = int(os.environ.get("CONSOLE_BENCH_RUNS", "15"))
# screen path -> a selector that is there once the screen has rendered its data
SCREENS = {
    "/analytics": "[data-testid=cohorts-heatmap] >> xpath=//ancestor::main//*[@data-testid='movements-table']",
    "/tiers": "[data-testid=tiers-table]",
    "/partners": "[data-testid=partners-table]",
    "/subscriptions": "[data-testid=subscriptions-table]",
    "/journeys": "[data-testid=journey-list]",
    "/promotions": "[data-testid=promotions-table]",
    "/quotes": "[data-testid=quotes-table]",
    "/experiments": "[data-testid=experiments-table]",
}


def p95(values):
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main():
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        ctx = browser.new_context(viewport=DESKTOP)
        page = ctx.new_page()
        page.goto(f"{BASE}/dev/sign-in?role=sales_manager")
        page.wait_for_selector("[data-testid=signed-in-role]")
        for path, ready in SCREENS.items():
            renders, slowest, calls = [], [], []
            for _ in range(RUNS):
                api = []

                def record(r, api=api):
                    if "/api/" in r.url:
                        api.append(r)

                page.on("requestfinished", record)
                start = time.perf_counter()
                page.goto(f"{BASE}{path}")
                page.wait_for_selector(ready)
                renders.append((time.perf_counter() - start) * 1000)
                # then count every call of the first render (networkidle: 500 ms quiet)
                page.wait_for_load_state("networkidle")
                page.remove_listener("requestfinished", record)
                calls.append(len(api))
                slowest.append(max((r.timing["responseEnd"] - r.timing["requestStart"]) for r in api) if api else 0)
            rows.append((path, max(calls), statistics.median(slowest), p95(slowest), statistics.median(renders), p95(renders)))
        browser.close()
    dist = os.path.join(os.path.dirname(__file__), "..", "dist", "assets")
    sizes = {os.path.basename(f): len(gzip.compress(open(f, "rb").read(), 9)) for f in glob.glob(os.path.join(dist, "*"))}
    print(f"\nConsole first render ({RUNS} loads per screen, sales_manager, seeded data, headless Chromium)")
    print("| screen | API calls | slowest call p50 / p95 (ms) | rendered p50 / p95 (ms) |")
    print("|---|---|---|---|")
    for path, n, s50, s95, r50, r95 in rows:
        print(f"| `{path}` | {n} | {s50:.0f} / {s95:.0f} | {r50:.0f} / {r95:.0f} |")
    print("\nBundle (gzip -9): " + ", ".join(f"{k} {v / 1024:.1f} kB" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
