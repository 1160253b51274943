// The chart component. Chart.js (about 60 kB gzip) lives in its own chunk,
// `chart-engine`, fetched the first time a chart is needed: a screen that only
// sometimes charts (the experiment list) never loads it, and a charting screen's
// API calls go out beside it instead of after it (`preloadCharts`).
import type { ChartConfiguration } from "chart.js";
import { useEffect, useRef, useState } from "preact/hooks";

export const PALETTE = ["#2754c5", "#1d9a6c", "#e08a00", "#b23a8a", "#5b6575", "#0a8fb0", "#c4372c", "#7a5cd6"];

type Engine = typeof import("./chart-engine");
let engine: Promise<Engine> | undefined;

/** Starts fetching Chart.js (once); a failed fetch may be tried again. */
export function preloadCharts(): Promise<Engine> {
  engine ??= import("./chart-engine").catch((e: unknown) => {
    engine = undefined;
    throw e;
  });
  return engine;
}

/** A chart; `testid` is set once it is drawn, so tests and the bench wait for the drawing. */
export function ChartView({ config, label, testid }: { config: ChartConfiguration; label: string; testid?: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [state, setState] = useState<"loading" | "drawn" | "failed">("loading");
  useEffect(() => {
    let live = true;
    let chart: { destroy(): void } | undefined;
    preloadCharts().then(
      (m) => {
        if (!live || !canvas.current) return;
        chart = m.draw(canvas.current, config);
        setState("drawn");
      },
      () => live && setState("failed"),
    );
    return () => {
      live = false;
      chart?.destroy();
    };
  }, [JSON.stringify(config.data), config.type]);
  return (
    <div class="chart-box" data-testid={state === "drawn" ? testid : undefined} aria-busy={state === "loading"}>
      {state === "failed" && <p class="muted">The chart could not be loaded; reload the page to try again.</p>}
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
