import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import TeamHarness from '../test/TeamHarness.svelte';
import SyncBadgeHarness from '../test/SyncBadgeHarness.svelte';
import { AppModel } from '../lib/app.svelte';
import { SyncBoard, itemState, parseEndpoints, syncLabel } from '../lib/sync.svelte';
import type { SyncItemState, SyncRefused, SyncStatusView } from '../lib/bindings';

afterEach(() => {
  cleanup();
  clearMocks();
});

const unlinked: SyncStatusView = {
  linked: false,
  endpoints: [],
  bucket: '',
  prefix: '',
  region: '',
  path_style: true,
  device_name: '',
  keys_in_keychain: false,
  last_sync: null,
  last_error: null,
  state: 'unlinked',
  pending_changes: 0,
  synced: 0,
  items: [],
  refused: [],
  next_sync_in_secs: 0,
  running: false,
};

function linked(items: SyncItemState[] = [], extra: Partial<SyncStatusView> = {}): SyncStatusView {
  return {
    ...unlinked,
    linked: true,
    endpoints: ['http://127.0.0.1:3900'],
    bucket: 'team',
    prefix: 'design',
    region: 'garage',
    device_name: 'laptop',
    keys_in_keychain: true,
    last_sync: '2026-11-23T15:00:00Z',
    state: items.some((i) => i.state === 'conflict') ? 'conflict' : items.length ? 'pending' : 'synced',
    pending_changes: items.filter((i) => i.state !== 'conflict').length,
    synced: 3,
    items,
    next_sync_in_secs: 30,
    ...extra,
  };
}

type Handler = (cmd: string, args: Record<string, unknown>) => unknown;

function shell(start: SyncStatusView, handler: Handler = () => undefined) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  let status = start;
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      const answer = handler(cmd, args);
      if (answer !== undefined) return answer;
      switch (cmd) {
        case 'sync_status':
          return status;
        case 'sync_link':
          status = linked();
          return status;
        case 'sync_unlink':
          status = unlinked;
          return status;
        case 'sync_cancel':
          return false;
        default:
          throw { code: 'internal', message: `unexpected ${cmd}` };
      }
    },
    { shouldMockEvents: true },
  );
  return { calls };
}

async function fillForm(user: ReturnType<typeof userEvent.setup>): Promise<void> {
  await user.type(
    await screen.findByTestId('team-endpoints'),
    'http://127.0.0.1:3900\nhttp://127.0.0.1:3903',
  );
  await user.type(screen.getByTestId('team-bucket'), 'team');
  await user.type(screen.getByTestId('team-prefix'), 'design');
  await user.type(screen.getByTestId('team-region'), 'garage');
  await user.type(screen.getByTestId('team-key-id'), 'GK123');
  await user.type(screen.getByTestId('team-secret'), 's3cret');
}

describe('the Team library view', () => {
  it('not linked: the form explains refused keys and an unreachable store, then links', async () => {
    let testAnswer: unknown = { code: 'remote_denied', message: 'team library refused access: 403' };
    const { calls } = shell(unlinked, (cmd) => {
      if (cmd === 'sync_test') {
        if (testAnswer) throw testAnswer;
        return null;
      }
      return undefined;
    });
    const user = userEvent.setup();
    render(TeamHarness);
    expect(await screen.findByTestId('team-link')).toBeDisabled();
    await fillForm(user);
    await user.click(screen.getByTestId('team-test'));
    const err = await screen.findByTestId('team-link-error');
    expect(err.dataset.code).toBe('remote_denied');
    expect(err).toHaveTextContent('check the access key id and secret');
    expect(calls.find((c) => c.cmd === 'sync_test')?.args).toEqual({
      link: {
        endpoints: ['http://127.0.0.1:3900', 'http://127.0.0.1:3903'],
        bucket: 'team',
        prefix: 'design',
        region: 'garage',
        path_style: true,
        device_name: null,
        access_key_id: 'GK123',
        secret_access_key: 's3cret',
        interval_secs: null,
      },
    });
    testAnswer = { code: 'remote_unreachable', message: 'team library unreachable: connection refused' };
    await user.click(screen.getByTestId('team-test'));
    await waitFor(() =>
      expect(screen.getByTestId('team-link-error').dataset.code).toBe('remote_unreachable'),
    );
    expect(screen.getByTestId('team-link-error')).toHaveTextContent('could not be reached');
    testAnswer = null;
    await user.click(screen.getByTestId('team-test'));
    expect(await screen.findByTestId('team-test-ok')).toBeInTheDocument();
    await user.click(screen.getByTestId('team-link'));
    const summary = await screen.findByTestId('team-summary');
    expect(summary.dataset.state).toBe('synced');
    expect(summary).toHaveTextContent('team/design');
    expect(summary).toHaveTextContent('in the OS keychain');
  });

  it('rejects an endpoint that is not an address', async () => {
    shell(unlinked);
    const user = userEvent.setup();
    render(TeamHarness);
    const field = await screen.findByTestId('team-endpoints');
    await user.type(field, 'node1:3900');
    expect(screen.getByText(/is not an address like/)).toBeInTheDocument();
    // Two addresses run together (no line break between them).
    await user.clear(field);
    await user.type(field, 'http://127.0.0.1:3900http://127.0.0.1:3903');
    expect(screen.getByText(/is not an address like/)).toBeInTheDocument();
    await user.clear(field);
    await user.type(field, 'http://127.0.0.1:3900, http://127.0.0.1:3903');
    expect(screen.queryByText(/is not an address like/)).toBeNull();
  });

  it('linked: conflicts open both files, errors show their reason, the timer’s status event refreshes', async () => {
    const model = new AppModel();
    shell(
      linked([
        {
          path: 'Blueprints/a (conflict desk).blueprint.yaml',
          state: 'conflict',
          reason: 'kept from a concurrent edit',
          original: 'Blueprints/a.blueprint.yaml',
        },
        {
          path: 'Blueprints/b.blueprint.yaml',
          state: 'error',
          reason: 'not sent: unreachable',
          original: null,
        },
      ]),
    );
    const user = userEvent.setup();
    render(TeamHarness, { model });
    const conflict = await screen.findByTestId('team-conflict');
    expect(screen.getByTestId('team-state')).toHaveTextContent('1 conflict');
    const item = screen.getByTestId('team-item');
    expect(item.dataset.state).toBe('error');
    expect(item).toHaveTextContent('not sent: unreachable');
    await user.click(within(conflict).getByTestId('open-conflict-original'));
    expect(model.selected).toBe('Blueprints/a.blueprint.yaml');
    expect(model.view).toBe('main');
    model.view = 'team';
    await user.click(await screen.findByTestId('open-conflict-copy'));
    expect(model.selected).toBe('Blueprints/a (conflict desk).blueprint.yaml');
    // A sync by the timer: the view follows the event.
    model.view = 'team';
    await emit('sync-status', linked());
    await waitFor(() => expect(screen.getByTestId('team-state')).toHaveTextContent('synced'));
    expect(screen.queryByTestId('team-conflict')).toBeNull();
  });

  it('linked: entries refused from the team library are listed with their device', async () => {
    const refused: SyncRefused[] = [
      {
        device: 'e0e0e0e0e0e0e0e0',
        object: 'logs/e0e0e0e0e0e0e0e0/000000000001.json',
        path: '../../.bashrc',
        reason: '`..` segments are not allowed',
        retry: false,
      },
      {
        device: 'e0e0e0e0e0e0e0e0',
        object: 'blobs/ab/abab',
        path: 'Blueprints/shared/forged.blueprint.yaml',
        reason: 'content abab does not match its hash (damaged or forged)',
        retry: true,
      },
    ];
    const { calls } = shell(linked([], { refused }), (cmd) =>
      cmd === 'sync_now'
        ? {
            recorded: 0,
            sent: 0,
            received: 1,
            applied: 1,
            conflicts: [],
            deferred: [],
            errors: [refused[1]],
            requests: 9,
            millis: 80,
          }
        : undefined,
    );
    const user = userEvent.setup();
    render(TeamHarness);
    const card = await screen.findByTestId('team-refused');
    const entries = within(card).getAllByTestId('team-refused-entry');
    expect(entries).toHaveLength(2);
    // Newest first.
    expect(entries[0]).toHaveTextContent('Blueprints/shared/forged.blueprint.yaml');
    expect(entries[0]).toHaveTextContent('checked again at every sync');
    expect(entries[1]?.dataset.device).toBe('e0e0e0e0e0e0e0e0');
    expect(entries[1]).toHaveTextContent('device e0e0e0e0e0e0e0e0');
    expect(entries[1]).toHaveTextContent('../../.bashrc');
    expect(entries[1]).toHaveTextContent('`..` segments are not allowed');
    expect(entries[1]).toHaveTextContent('logs/e0e0e0e0e0e0e0e0/000000000001.json');
    await user.click(screen.getByTestId('team-sync-now'));
    expect(await screen.findByTestId('team-result')).toHaveTextContent('1 entry refused');
    expect(calls.some((c) => c.cmd === 'sync_now')).toBe(true);
    // A status without refusals: the card goes.
    await emit('sync-status', linked());
    await waitFor(() => expect(screen.queryByTestId('team-refused')).toBeNull());
  });

  it('Sync now shows progress, Cancel stops it with changes kept queued', async () => {
    let cancelRunning: (() => void) | null = null;
    const { calls } = shell(
      linked([{ path: 'x.blueprint.yaml', state: 'pending', reason: null, original: null }]),
      (cmd) => {
        if (cmd === 'sync_now')
          return new Promise((_, reject) => {
            cancelRunning = () => reject({ code: 'cancelled', message: 'the operation was cancelled' });
          });
        if (cmd === 'sync_cancel') {
          cancelRunning?.();
          return true;
        }
        return undefined;
      },
    );
    const user = userEvent.setup();
    render(TeamHarness);
    await user.click(await screen.findByTestId('team-sync-now'));
    expect(screen.getByTestId('team-sync-now')).toBeDisabled();
    await emit('sync-progress', { phase: 'upload', done: 40, total: 100 });
    await waitFor(() => expect(screen.getByTestId('team-progress')).toHaveTextContent('upload 40 of 100'));
    await user.click(screen.getByTestId('team-cancel'));
    expect(calls.some((c) => c.cmd === 'sync_cancel')).toBe(true);
    const err = await screen.findByTestId('team-error');
    expect(err).toHaveTextContent('stay queued');
    expect(screen.getByTestId('team-sync-now')).toBeEnabled();
  });

  it('Sync now reports what it did; Unlink asks first', async () => {
    const { calls } = shell(linked(), (cmd) =>
      cmd === 'sync_now'
        ? {
            recorded: 1,
            sent: 1,
            received: 2,
            applied: 2,
            conflicts: [],
            deferred: [],
            errors: [],
            requests: 9,
            millis: 80,
          }
        : undefined,
    );
    const user = userEvent.setup();
    render(TeamHarness);
    await user.click(await screen.findByTestId('team-sync-now'));
    expect(await screen.findByTestId('team-result')).toHaveTextContent(
      'Synced: sent 1 change, received 2, updated 2 files.',
    );
    await user.click(screen.getByText('Unlink…'));
    expect(calls.some((c) => c.cmd === 'sync_unlink')).toBe(false);
    await user.click(screen.getByTestId('team-unlink'));
    expect(await screen.findByTestId('team-link-form')).toBeInTheDocument();
  });
});

describe('sync helpers', () => {
  it('label the status bar', () => {
    expect(syncLabel(unlinked)).toBeNull();
    expect(syncLabel(linked())?.text).toBe('synced');
    expect(syncLabel(linked([{ path: 'a', state: 'pending', reason: null, original: null }]))?.text).toBe(
      'pending 1',
    );
    expect(syncLabel(linked([], { state: 'offline', last_error: 'team library unreachable: x' }))?.text).toBe(
      'offline',
    );
    expect(syncLabel(linked([], { running: true }))?.text).toBe('syncing…');
  });

  it('give each blueprint its state', () => {
    const s = linked([{ path: 'a', state: 'pending', reason: null, original: null }]);
    expect(itemState(s, 'a')?.state).toBe('pending');
    expect(itemState(s, 'b')?.state).toBe('synced');
    expect(itemState(unlinked, 'a')).toBeNull();
  });

  it('read endpoints one per line or comma separated', () => {
    expect(parseEndpoints(' http://a:1 \n\nhttp://b:2, http://c:3')).toEqual([
      'http://a:1',
      'http://b:2',
      'http://c:3',
    ]);
  });
});

describe('the detail pane badge', () => {
  it('says nothing when unlinked, and opens the other version of a conflict copy', async () => {
    const model = new AppModel();
    const board = new SyncBoard();
    const copy = 'Blueprints/a (conflict desk).blueprint.yaml';
    const user = userEvent.setup();
    const { rerender } = render(SyncBadgeHarness, { model, board, path: copy });
    expect(screen.queryByTestId('sync-badge')).toBeNull();
    board.status = linked([
      { path: copy, state: 'conflict', reason: 'kept', original: 'Blueprints/a.blueprint.yaml' },
    ]);
    await rerender({ model, board, path: copy });
    const badge = await screen.findByTestId('sync-badge');
    expect(badge.dataset.state).toBe('conflict');
    expect(badge).toHaveAttribute('title', 'kept');
    await user.click(screen.getByTestId('open-conflict-original'));
    expect(model.selected).toBe('Blueprints/a.blueprint.yaml');
    await rerender({ model, board, path: 'Blueprints/b.blueprint.yaml' });
    await waitFor(() => expect(screen.getByTestId('sync-badge').dataset.state).toBe('synced'));
  });
});
