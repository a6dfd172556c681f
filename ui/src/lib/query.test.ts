import { describe, expect, it, vi } from 'vitest';
import { QueryClient, type Caller } from './query.svelte';
import { RowModel, PAGE } from './rows.svelte';
import type { Item } from './bindings';

function item(i: number): Item {
  return {
    path: `Blueprints/personal/bp-${i}.blueprint.yaml`,
    id: null,
    name: `Blueprint ${i}`,
    description: null,
    tags: [],
    author: null,
    version: null,
    modified: '2026-01-01T00:00:00Z',
    size: 10,
    hash: `h${i}`,
    encrypted: false,
    valid: true,
    error: null,
    error_line: null,
  };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('QueryClient', () => {
  it('caches by command and arguments until invalidated, sharing requests in flight', async () => {
    const caller = vi.fn(async () => ({ folders: [], tags: [] }));
    const client = new QueryClient(caller as unknown as Caller);
    await Promise.all([client.fetch('sidebar', {}), client.fetch('sidebar', {})]);
    await client.fetch('sidebar', {});
    expect(caller).toHaveBeenCalledTimes(1);
    client.invalidate();
    await client.fetch('sidebar', {});
    expect(caller).toHaveBeenCalledTimes(2);
    expect(client.peek('sidebar', {})).toEqual({ folders: [], tags: [] });
  });

  it('does not cache an answer that arrives after an invalidation', async () => {
    const d = deferred<{ folders: never[]; tags: never[] }>();
    const caller = vi.fn(() => d.promise);
    const client = new QueryClient(caller as unknown as Caller);
    const p = client.fetch('sidebar', {});
    client.invalidate();
    d.resolve({ folders: [], tags: [] });
    await p;
    expect(client.peek('sidebar', {})).toBeUndefined();
  });
});

describe('RowModel', () => {
  it('loads pages on demand and reports the total', async () => {
    const caller = vi.fn(async (_cmd: string, args: { query: { offset: number; limit: number } }) => {
      const { offset, limit } = args.query;
      const n = Math.max(0, Math.min(limit, 450 - offset));
      return { items: Array.from({ length: n }, (_, i) => item(offset + i)), total: 450 };
    });
    const rows = new RowModel(new QueryClient(caller as unknown as Caller));
    rows.load({ kind: 'list', args: { folder: null, tags: [], sort: 'name', invalid_only: false } });
    await tick();
    expect(rows.ready).toBe(true);
    expect(rows.total).toBe(450);
    expect(rows.rowAt(0)?.name).toBe('Blueprint 0');
    expect(rows.rowAt(PAGE + 5)).toBeUndefined();
    await tick();
    expect(rows.rowAt(PAGE + 5)?.name).toBe(`Blueprint ${PAGE + 5}`);
    expect(rows.indexOf(`Blueprints/personal/bp-${PAGE + 5}.blueprint.yaml`)).toBe(PAGE + 5);
  });

  it('ignores the answer of a superseded search', async () => {
    const slow = deferred<{ hits: Item[]; total: number }>();
    const caller = vi.fn((_cmd: string, args: { query: { text: string } }) =>
      args.query.text === 'sa' ? slow.promise : Promise.resolve({ hits: [item(7)], total: 1 }),
    );
    const rows = new RowModel(new QueryClient(caller as unknown as Caller));
    rows.load({ kind: 'search', args: { text: 'sa', tags: [], folder: null } });
    rows.load({ kind: 'search', args: { text: 'sales', tags: [], folder: null } });
    await tick();
    slow.resolve({ hits: [item(1), item(2)], total: 2 });
    await tick();
    expect(rows.total).toBe(1);
    expect(rows.loaded().map((r) => r.name)).toEqual(['Blueprint 7']);
  });
});
