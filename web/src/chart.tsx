// Chart.js with only the pieces the screens use registered (keeps the bundle small).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartConfiguration,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "preact/hooks";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip, Filler);
Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
Chart.defaults.animation = false;

export const PALETTE = ["#2754c5", "#1d9a6c", "#e08a00", "#b23a8a", "#5b6575", "#0a8fb0", "#c4372c", "#7a5cd6"];

export function ChartView({ config, label, testid }: { config: ChartConfiguration; label: string; testid?: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      ...config,
      options: { responsive: true, maintainAspectRatio: false, ...config.options },
    });
    return () => chart.destroy();
  }, [JSON.stringify(config.data), config.type]);
  return (
    <div class="chart-box" data-testid={testid}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
