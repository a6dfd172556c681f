// The app's UI state: which view, which filters, which blueprint is open. Backend data
// lives in the QueryClient (server state); this holds only what the user chose.
import { getContext, setContext } from 'svelte';
import type { LibraryState, SortBy } from './bindings';
import type { CommandError } from './ipc';
import { QueryClient } from './query.svelte';
import { RowModel, type RowSource } from './rows.svelte';

export type View = 'main' | 'trash' | 'settings' | 'backups' | 'credentials' | 'team';

export interface Notice {
  id: number;
  tone: 'info' | 'error';
  message: string;
  action?: { label: string; run: () => void };
}

export class AppModel {
  readonly client: QueryClient;
  readonly rows: RowModel;
  view = $state<View>('main');
  library = $state<LibraryState | null>(null);
  libraryError = $state<CommandError | null>(null);
  /** Work the index is doing, shown in the status bar. */
  busy = $state<string | null>(null);
  folder = $state<string | null>(null);
  tags = $state<string[]>([]);
  sort = $state<SortBy>('name');
  invalidOnly = $state(false);
  search = $state('');
  /** The search text the list shows (the box's text once the debounce has passed). */
  appliedSearch = $state('');
  selected = $state<string | null>(null);
  notices = $state<Notice[]>([]);
  #noticeId = 0;

  constructor(client: QueryClient = new QueryClient()) {
    this.client = client;
    this.rows = new RowModel(client);
  }

  source(): RowSource {
    const text = this.appliedSearch.trim();
    if (text) return { kind: 'search', args: { text, tags: [...this.tags], folder: this.folder } };
    return {
      kind: 'list',
      args: { folder: this.folder, tags: [...this.tags], sort: this.sort, invalid_only: this.invalidOnly },
    };
  }

  toggleTag(tag: string): void {
    const lower = tag.toLowerCase();
    this.tags = this.tags.some((t) => t.toLowerCase() === lower)
      ? this.tags.filter((t) => t.toLowerCase() !== lower)
      : [...this.tags, tag];
  }

  notify(message: string, tone: Notice['tone'] = 'info', action?: Notice['action']): void {
    const id = ++this.#noticeId;
    this.notices = [...this.notices, { id, tone, message, ...(action ? { action } : {}) }];
    setTimeout(() => this.dismiss(id), tone === 'error' ? 9000 : 5000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}

const KEY = Symbol('app');

export function provideApp(app: AppModel): AppModel {
  setContext(KEY, app);
  return app;
}

export function useApp(): AppModel {
  const app = getContext<AppModel | undefined>(KEY);
  if (!app) throw new Error('useApp() outside <App>');
  return app;
}
