// Line diff (Myers' O(ND) algorithm) for showing what differs between the user's unsaved
// text and the version another program wrote. Common head and tail are trimmed first, so
// the usual case — a few changed lines in a long file — stays cheap.

export interface DiffLine {
  kind: 'same' | 'add' | 'del';
  text: string;
}

/** Above this many edits the diff gives up on precision: all of `a` out, all of `b` in. */
const MAX_EDITS = 4000;

export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The lines of `b` against `a`: `del` only in a, `add` only in b, `same` in both. */
export function diffLines(a: string, b: string): DiffLine[] {
  const x = splitLines(a);
  const y = splitLines(b);
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (
    tail < x.length - head &&
    tail < y.length - head &&
    x[x.length - 1 - tail] === y[y.length - 1 - tail]
  ) {
    tail++;
  }
  const xs = x.slice(head, x.length - tail);
  const ys = y.slice(head, y.length - tail);
  const out: DiffLine[] = x.slice(0, head).map((text) => ({ kind: 'same', text }));
  out.push(...middle(xs, ys));
  out.push(...x.slice(x.length - tail).map((text): DiffLine => ({ kind: 'same', text })));
  return out;
}

/** Typed-array and line reads that are in range by construction (the checker can't see it). */
const at = (v: Int32Array, i: number): number => v[i] ?? 0;
const line = (lines: string[], i: number): string => lines[i] ?? '';

function middle(x: string[], y: string[]): DiffLine[] {
  const n = x.length;
  const m = y.length;
  if (n === 0) return y.map((text) => ({ kind: 'add', text }));
  if (m === 0) return x.map((text) => ({ kind: 'del', text }));
  const max = Math.min(n + m, MAX_EDITS);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let i =
        k === -d || (k !== d && at(v, offset + k - 1) < at(v, offset + k + 1))
          ? at(v, offset + k + 1)
          : at(v, offset + k - 1) + 1;
      let j = i - k;
      while (i < n && j < m && x[i] === y[j]) {
        i++;
        j++;
      }
      v[offset + k] = i;
      if (i >= n && j >= m) return backtrack(trace, x, y, offset);
    }
  }
  return [
    ...x.map((text): DiffLine => ({ kind: 'del', text })),
    ...y.map((text): DiffLine => ({ kind: 'add', text })),
  ];
}

function backtrack(trace: Int32Array[], x: string[], y: string[], offset: number): DiffLine[] {
  const out: DiffLine[] = [];
  let i = x.length;
  let j = y.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d] ?? new Int32Array(0);
    const k = i - j;
    const prevK = k === -d || (k !== d && at(v, offset + k - 1) < at(v, offset + k + 1)) ? k + 1 : k - 1;
    const prevI = at(v, offset + prevK);
    const prevJ = prevI - prevK;
    while (i > prevI && j > prevJ) {
      out.push({ kind: 'same', text: line(x, --i) });
      j--;
    }
    if (d > 0) {
      if (i === prevI) out.push({ kind: 'add', text: line(y, --j) });
      else out.push({ kind: 'del', text: line(x, --i) });
    }
  }
  return out.reverse();
}

/** How many lines each side changed. */
export function diffStats(lines: DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const l of lines) {
    if (l.kind === 'add') added++;
    else if (l.kind === 'del') removed++;
  }
  return { added, removed };
}
