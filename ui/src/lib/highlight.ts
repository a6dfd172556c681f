// The engine's snippets mark matches as <mark>…</mark> and may contain any other text
// from the user's files. They are split into plain segments here and rendered as text
// nodes: nothing from a file is ever parsed as HTML.
export interface Segment {
  text: string;
  mark: boolean;
}

const OPEN = '<mark>';
const CLOSE = '</mark>';

export function splitMarks(snippet: string): Segment[] {
  const out: Segment[] = [];
  let rest = snippet;
  while (rest.length > 0) {
    const start = rest.indexOf(OPEN);
    if (start < 0) {
      push(out, rest, false);
      break;
    }
    push(out, rest.slice(0, start), false);
    rest = rest.slice(start + OPEN.length);
    const end = rest.indexOf(CLOSE);
    if (end < 0) {
      push(out, rest, true);
      break;
    }
    push(out, rest.slice(0, end), true);
    rest = rest.slice(end + CLOSE.length);
  }
  return out;
}

function push(out: Segment[], text: string, mark: boolean): void {
  if (text.length === 0) return;
  const last = out[out.length - 1];
  if (last && last.mark === mark) last.text += text;
  else out.push({ text, mark });
}

/** Highlight the words of `query` in `text` (case-insensitive), for names and tags. */
export function markWords(text: string, query: string): Segment[] {
  const words = query
    .toLowerCase()
    .split(/[\s"']+/)
    .filter((w) => w.length > 0);
  if (words.length === 0) return text ? [{ text, mark: false }] : [];
  const lower = text.toLowerCase();
  const marked = new Array<boolean>(text.length).fill(false);
  for (const w of words) {
    let i = lower.indexOf(w);
    while (i >= 0) {
      for (let j = i; j < i + w.length; j++) marked[j] = true;
      i = lower.indexOf(w, i + w.length);
    }
  }
  const out: Segment[] = [];
  for (let i = 0; i < text.length; i++) push(out, text.charAt(i), marked[i] ?? false);
  return out;
}

/**
 * Shorten the text before the first mark to at most `lead` characters (with an
 * ellipsis), so that a one-line excerpt shows the match rather than its preamble.
 */
export function focusFirstMark(segments: Segment[], lead = 28): Segment[] {
  const first = segments[0];
  if (!first || first.mark || segments.length < 2 || first.text.length <= lead) return segments;
  const tail = first.text.slice(first.text.length - lead);
  const cut = tail.indexOf(' ');
  const kept = cut >= 0 && cut < lead - 8 ? tail.slice(cut + 1) : tail;
  return [{ text: `…${kept}`, mark: false }, ...segments.slice(1)];
}
