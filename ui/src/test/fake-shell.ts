// A fake shell for component tests: answers the app's commands from an in-memory
// library through Tauri's IPC mock (the only place the IPC is mocked).
import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import type {
  BackupFailure,
  BlueprintDetail,
  IpcError,
  Item,
  LibraryState,
  SearchHit,
} from '../lib/bindings';

export function item(i: number, extra: Partial<Item> = {}): Item {
  return {
    path: `Blueprints/personal/bp-${String(i).padStart(3, '0')}.blueprint.yaml`,
    id: null,
    name: `Blueprint ${i}`,
    description: `Does thing ${i}`,
    tags: i % 2 ? ['crm'] : [],
    author: 'ana',
    version: '1.0',
    modified: '2026-01-01T00:00:00Z',
    size: 120,
    hash: `hash-${i}`,
    encrypted: false,
    valid: true,
    error: null,
    error_line: null,
    ...extra,
  };
}

export interface FakeShell {
  items: Item[];
  calls: { cmd: string; args: Record<string, unknown> }[];
  /** Make the next call of a command fail with this error. */
  failNext: Map<string, IpcError>;
  /** Snippets to return for search hits, by path. */
  snippets: Map<string, string>;
  /** The failed backup `backup_settings` reports (null: the last one succeeded). */
  backupFailure: BackupFailure | null;
}

export function installFakeShell(count = 30): FakeShell {
  const shell: FakeShell = {
    items: Array.from({ length: count }, (_, i) => item(i)),
    calls: [],
    failNext: new Map(),
    snippets: new Map(),
    backupFailure: null,
  };
  const state = (): LibraryState => ({
    path: '/home/ana/Documents/Blueprint Vault',
    name: 'Blueprint Vault',
    data_dir: '/data',
    log_dir: '/data/logs',
    stats: { items: shell.items.length, invalid: 0, encrypted: 0, bytes: 0 },
    trash: 0,
    open_millis: 3,
    watch: 'watching',
  });
  let opened = false;
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      shell.calls.push({ cmd, args });
      const failure = shell.failNext.get(cmd);
      if (failure) {
        shell.failNext.delete(cmd);
        throw failure;
      }
      switch (cmd) {
        case 'library_state':
          return opened ? state() : null;
        case 'open_library':
          opened = true;
          return state();
        case 'sidebar':
          return {
            folders: [{ path: 'Blueprints/personal', count: shell.items.length }],
            tags: [{ tag: 'crm', count: 15 }],
          };
        case 'list_items': {
          const q = args.query as unknown as { offset: number; limit: number };
          return { items: shell.items.slice(q.offset, q.offset + q.limit), total: shell.items.length };
        }
        case 'search_items': {
          const q = args.query as unknown as { text: string; offset: number; limit: number };
          const hits: SearchHit[] = shell.items
            .filter((i) => i.name.toLowerCase().includes(q.text.toLowerCase()))
            .map((i) => ({ ...i, score: 1, snippet: shell.snippets.get(i.path) ?? null }));
          return { hits: hits.slice(q.offset, q.offset + q.limit), total: hits.length };
        }
        case 'get_blueprint': {
          const it = shell.items.find((i) => i.path === args.path);
          if (!it) throw { code: 'not_found', message: `not found: ${args.path}` };
          const detail: BlueprintDetail = {
            item: it,
            yaml: `name: ${it.name}\nnodes:\n  - {id: fetch, type: http}\n  - {id: send, type: slack}\nedges:\n  - {from: fetch, to: send}\n`,
            editable: true,
            file: `/lib/${it.path}`,
            secrets: [],
            locked: null,
            check: {
              problem: null,
              nodes: [
                { id: 'fetch', node_type: 'http', label: null, x: null, y: null },
                { id: 'send', node_type: 'slack', label: 'Post to Slack', x: null, y: null },
              ],
              edges: [{ from: 'fetch', to: 'send' }],
              yaml_tags: [],
              yaml_description: null,
            },
          };
          return detail;
        }
        case 'update_meta': {
          const it = shell.items.find((i) => i.path === args.path)!;
          const edit = args.edit as unknown as { tags: string[] | null };
          if (edit.tags) it.tags = edit.tags;
          void emit('library-changed', { kind: 'changed', paths: [it.path] });
          return it;
        }
        case 'delete_blueprint': {
          const it = shell.items.find((i) => i.path === args.path)!;
          shell.items = shell.items.filter((i) => i !== it);
          void emit('library-changed', { kind: 'changed', paths: [it.path] });
          return {
            id: 't1',
            path: it.path,
            name: it.name,
            deleted: '2026-01-02T00:00:00Z',
            size: 1,
            hash: it.hash,
          };
        }
        case 'refresh':
          return { added: 0, changed: 0, removed: 0, unchanged: shell.items.length, millis: 1 };
        case 'check_yaml':
          return { problem: null, nodes: [], edges: [], yaml_tags: [], yaml_description: null };
        case 'backup_settings':
          return {
            location: null,
            effective_location: '/data/backups',
            default_location: '/data/backups',
            schedule: 'off',
            last_backup: null,
            last_failure: shell.backupFailure,
            retention: { keep_last: null, keep_daily: null, keep_weekly: null },
          };
        default:
          throw { code: 'internal', message: `unexpected command ${cmd}` };
      }
    },
    { shouldMockEvents: true },
  );
  return shell;
}
