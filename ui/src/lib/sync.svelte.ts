// The team-library sync state the whole window shares: the open library's link status
// (read with `sync_status`, then kept current by the shell's `sync-status` event after
// every sync, the timer's too), the running sync's progress, and the small pure helpers
// the status bar, the detail pane's badge and the Team view use.
import { getContext, setContext } from 'svelte';
import type { SyncItemState, SyncProgress, SyncStatusView } from './bindings';
import { call, on } from './ipc';

/** One blueprint's sync state: an item the shell reported, else `synced` (null: not linked). */
export type ItemSyncState = 'synced' | 'pending' | 'conflict' | 'error';

export class SyncBoard {
  status = $state<SyncStatusView | null>(null);
  progress = $state<SyncProgress | null>(null);

  /** Read the status again (after opening a library, linking, unlinking). */
  async refresh(): Promise<void> {
    try {
      this.status = await call('sync_status', {});
    } catch {
      this.status = null; // no library open yet
    }
  }

  /** Follow the shell's events; returns the unsubscribe. */
  listen(): () => void {
    const stops: (() => void)[] = [];
    let alive = true;
    const keep = (p: Promise<() => void>) =>
      p.then((u) => (alive ? stops.push(u) : u())).catch(() => undefined);
    keep(
      on('sync-status', (s) => {
        this.status = s;
        if (!s.running) this.progress = null;
      }),
    );
    keep(on('sync-progress', (p) => (this.progress = p)));
    keep(
      on('library-changed', (e) => {
        if (e.kind === 'opened') void this.refresh();
      }),
    );
    void this.refresh();
    return () => {
      alive = false;
      stops.forEach((u) => u());
    };
  }

  item(path: string): { state: ItemSyncState; reason: string | null; original: string | null } | null {
    return itemState(this.status, path);
  }
}

export function itemState(
  status: SyncStatusView | null,
  path: string,
): { state: ItemSyncState; reason: string | null; original: string | null } | null {
  if (!status?.linked) return null;
  const found: SyncItemState | undefined = status.items.find((i) => i.path === path);
  if (!found) return { state: 'synced', reason: null, original: null };
  return { state: found.state as ItemSyncState, reason: found.reason, original: found.original };
}

/** The status bar's words for the link: null when the library is not linked. */
export function syncLabel(
  status: SyncStatusView | null,
): { text: string; tone: 'ok' | 'busy' | 'warn' } | null {
  if (!status?.linked) return null;
  if (status.running) return { text: 'syncing…', tone: 'busy' };
  switch (status.state) {
    case 'offline':
      return { text: 'offline', tone: 'warn' };
    case 'error':
      return { text: 'sync error', tone: 'warn' };
    case 'conflict': {
      const n = status.items.filter((i) => i.state === 'conflict').length;
      return { text: n === 1 ? '1 conflict' : `${n} conflicts`, tone: 'warn' };
    }
    case 'pending':
      return { text: `pending ${status.pending_changes}`, tone: 'busy' };
    default:
      return { text: 'synced', tone: 'ok' };
  }
}

/** What to tell a person about a failed link, test or sync, by the error's code. */
export function syncErrorHint(code: string): string | null {
  switch (code) {
    case 'remote_unreachable':
      return 'The store could not be reached: check the endpoint (http(s)://host:port), that the server runs, and your network.';
    case 'remote_denied':
      return 'The store refused: check the access key id and secret, the bucket name, and that the key may read and write the bucket.';
    case 'remote_corrupt':
      return 'The team library holds data this app cannot read (written by a newer version?).';
    case 'not_linked':
      return 'This library is not linked to a team library.';
    case 'cancelled':
      return 'Stopped: changes not sent yet stay queued for the next sync.';
    case 'busy':
      return 'A sync is already running.';
    default:
      return null;
  }
}

/** Endpoints from the form's text: one per line (or comma separated), trimmed. */
export function parseEndpoints(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((e) => e.trim())
    .filter((e) => e !== '');
}

const KEY = Symbol('sync');

export function provideSync(board: SyncBoard): SyncBoard {
  setContext(KEY, board);
  return board;
}

/** The window's sync board, or null outside the app (component tests of other views). */
export function useSync(): SyncBoard | null {
  return getContext<SyncBoard | undefined>(KEY) ?? null;
}
