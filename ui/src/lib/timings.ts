// Figures the end-to-end tests and benchmarks read through WebDriver: when the first
// list was painted (ms since the page started) and each search's keystroke-to-paint time.
export interface Timings {
  firstListPainted: number | null;
  searches: { text: string; total: number; ms: number }[];
}

declare global {
  interface Window {
    __bpvTimings?: Timings;
  }
}

export function timings(): Timings {
  if (!window.__bpvTimings) window.__bpvTimings = { firstListPainted: null, searches: [] };
  return window.__bpvTimings;
}

/** Run after the next paint. */
export function afterPaint(f: () => void): void {
  requestAnimationFrame(() => setTimeout(f, 0));
}
