import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import BackupsHarness from '../../test/BackupsHarness.svelte';
import type { RetentionSettings, SnapshotRow } from '../bindings';

afterEach(() => {
  cleanup();
  clearMocks();
  vi.restoreAllMocks();
});

const snap = (id: string, created: string): SnapshotRow => ({
  id,
  created,
  library: '/lib',
  files: 3,
  bytes: 3000,
  new_bytes: 1200,
});

/** A shell whose prune runs until `cancel_operation` for `prune` stops it. */
function shell() {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const snapshots = [snap('s3', '2026-11-23T15:00:00Z'), snap('s2', '2026-11-22T15:00:00Z')];
  let retention: RetentionSettings = { keep_last: null, keep_daily: null, keep_weekly: null };
  let stopPrune: (() => void) | null = null;
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      switch (cmd) {
        case 'set_backup_retention':
        case 'backup_settings':
          if (cmd === 'set_backup_retention') retention = args.retention as RetentionSettings;
          return {
            retention,
            location: null,
            effective_location: '/data/area/backups',
            default_location: '/data/area/backups',
            schedule: 'off',
            last_backup: null,
          };
        case 'backup_snapshots':
          return snapshots;
        case 'prune_preview':
          return { kept: snapshots.slice(0, 1), removed: snapshots.slice(1), warnings: [] };
        case 'prune_backups':
          return new Promise((_, reject) => {
            stopPrune = () => reject({ code: 'cancelled', message: 'cancelled' });
          });
        case 'cancel_operation':
          if (args.op !== 'prune' || !stopPrune) return false;
          stopPrune();
          return true;
        default:
          throw { code: 'internal', message: `unexpected ${cmd}` };
      }
    },
    { shouldMockEvents: true },
  );
  return { calls };
}

describe('cancelling a prune', () => {
  it('shows progress with a Cancel button that stops the prune and says what is safe', async () => {
    const { calls } = shell();
    const user = userEvent.setup();
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    render(BackupsHarness);
    await user.type(await screen.findByTestId('prune-keep-last'), '1');
    await user.tab();
    await user.click(screen.getByTestId('prune-preview'));
    await screen.findAllByTestId('prune-removed-row');
    // No Cancel before a prune runs.
    expect(screen.queryByTestId('prune-cancel')).toBeNull();

    await user.click(screen.getByTestId('prune-now'));
    const cancel = await screen.findByTestId('prune-cancel');
    await emit('operation-progress', { op: 'prune', phase: 'objects', done: 3, total: 10 });
    await waitFor(() => expect(screen.getByTestId('prune-progress')).toHaveTextContent('objects'));

    await user.click(cancel);
    expect(calls.find((c) => c.cmd === 'cancel_operation')?.args).toEqual({ op: 'prune' });
    const banner = await screen.findByText('Prune cancelled; nothing a kept snapshot needs was removed.');
    expect(banner.closest('[role]')).toHaveAttribute('role', 'status');
    expect(screen.queryByTestId('prune-cancel')).toBeNull();
    expect(screen.queryByTestId('prune-progress')).toBeNull();
    expect(screen.queryByTestId('prune-result')).toBeNull();
  });
});
