// The rows of the main list, fetched page by page as they scroll into view: the library
// listing (filtered, sorted) or the ranked results of a search. A change of source
// (filters, search text) or an invalidation starts over; pages from a superseded
// source are dropped.
import type { Item, ListArgs, SearchArgs, SearchHit } from './bindings';
import { toCommandError, type CommandError } from './ipc';
import type { QueryClient } from './query.svelte';

export type Row = Item & { snippet?: string | null; score?: number };

export type RowSource =
  | { kind: 'list'; args: Omit<ListArgs, 'offset' | 'limit'> }
  | { kind: 'search'; args: Omit<SearchArgs, 'offset' | 'limit'> };

export const PAGE = 200;

export class RowModel {
  total = $state(0);
  /** The first page of the current source has arrived. */
  ready = $state(false);
  error = $state<CommandError | undefined>(undefined);
  #pages = $state<Record<number, Row[]>>({});
  // Bookkeeping only (what was asked for), deliberately not reactive.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #requested = new Set<number>();
  #source: RowSource | null = null;
  #epoch = 0;
  readonly #client: QueryClient;
  /** Called when the first page of a new source has been applied (for timing). */
  onFirstPage: ((source: RowSource, total: number) => void) | undefined;

  constructor(client: QueryClient) {
    this.#client = client;
  }

  get source(): RowSource | null {
    return this.#source;
  }

  /** Switch to a new source (or reload the current one after an invalidation). */
  load(source: RowSource, keepRows = false): void {
    this.#source = source;
    this.#epoch += 1;
    this.#requested.clear();
    if (!keepRows) {
      this.#pages = {};
      this.ready = false;
    }
    this.error = undefined;
    this.#fetch(0, true);
  }

  /** The row at `index`, or undefined while its page loads (which this requests). */
  rowAt(index: number): Row | undefined {
    const page = Math.floor(index / PAGE);
    const rows = this.#pages[page];
    if (!this.#requested.has(page)) this.#fetch(page, false);
    return rows?.[index - page * PAGE];
  }

  /** Rows already loaded (for keyboard navigation and tests). */
  loaded(): Row[] {
    return Object.keys(this.#pages)
      .map(Number)
      .sort((a, b) => a - b)
      .flatMap((p) => this.#pages[p] ?? []);
  }

  indexOf(path: string): number {
    for (const [p, rows] of Object.entries(this.#pages)) {
      const i = rows.findIndex((r) => r.path === path);
      if (i >= 0) return Number(p) * PAGE + i;
    }
    return -1;
  }

  #fetch(page: number, first: boolean): void {
    const source = this.#source;
    if (!source) return;
    this.#requested.add(page);
    const epoch = this.#epoch;
    const offset = page * PAGE;
    const request: Promise<{ rows: Row[]; total: number }> =
      source.kind === 'list'
        ? this.#client
            .fetch('list_items', { query: { ...source.args, offset, limit: PAGE } })
            .then((p) => ({ rows: p.items, total: p.total }))
        : this.#client
            .fetch('search_items', { query: { ...source.args, offset, limit: PAGE } })
            .then((p) => ({ rows: p.hits.map(hitRow), total: p.total }));
    request.then(
      ({ rows, total }) => {
        if (epoch !== this.#epoch) return;
        if (first) this.#pages = { 0: rows };
        else this.#pages[page] = rows;
        this.total = total;
        if (first) {
          this.ready = true;
          this.onFirstPage?.(source, total);
        }
      },
      (e: unknown) => {
        if (epoch !== this.#epoch) return;
        this.#requested.delete(page);
        this.error = toCommandError(e);
        this.ready = true;
      },
    );
  }
}

function hitRow(h: SearchHit): Row {
  return h;
}
