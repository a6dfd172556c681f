import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import BackupStatusHarness from '../../test/BackupStatusHarness.svelte';
import type { BackupFailure, BackupFinished, BackupSettingsView } from '../bindings';

afterEach(() => {
  cleanup();
  clearMocks();
  vi.restoreAllMocks();
});

/** A shell whose backup settings carry `state.failure` (what the Rust side records). */
function shell(state: { failure: BackupFailure | null }) {
  const calls: string[] = [];
  mockIPC(
    (cmd) => {
      calls.push(cmd);
      if (cmd !== 'backup_settings') throw { code: 'internal', message: `unexpected ${cmd}` };
      const view: BackupSettingsView = {
        location: null,
        effective_location: '/data/backups',
        default_location: '/data/backups',
        schedule: 'hourly',
        last_backup: 1_700_000_000,
        last_failure: state.failure,
        retention: { keep_last: null, keep_daily: null, keep_weekly: null },
      };
      return view;
    },
    { shouldMockEvents: true },
  );
  return calls;
}

const WHY = 'the snapshot failed its verification: 2 objects damaged';

describe('the status bar backup item', () => {
  it('shows nothing while the last backup succeeded', async () => {
    const calls = shell({ failure: null });
    render(BackupStatusHarness, { onopen: () => {} });
    await waitFor(() => expect(calls).toContain('backup_settings'));
    expect(screen.queryByTestId('status-backup-failed')).toBeNull();
  });

  it('shows a failed backup (when, why) after the event, opens Backups, and clears on success', async () => {
    const state: { failure: BackupFailure | null } = { failure: null };
    const calls = shell(state);
    const onopen = vi.fn();
    const user = userEvent.setup();
    render(BackupStatusHarness, { onopen });
    await waitFor(() => expect(calls).toContain('backup_settings'));

    // The schedule's backup fails its verification: the shell records it, then emits.
    state.failure = { at: Math.floor(Date.now() / 1000) - 120, message: WHY, scheduled: true };
    const failed: BackupFinished = { ok: false, scheduled: true, id: null, message: WHY };
    await emit('backup-finished', failed);
    const item = await screen.findByTestId('status-backup-failed');
    expect(item).toHaveTextContent(`Automatic backup failed 2 min ago: ${WHY}`);
    expect(item.getAttribute('title')).toContain(WHY);

    await user.click(item);
    expect(onopen).toHaveBeenCalledTimes(1);

    // The next backup succeeds: the shell cleared the failure.
    state.failure = null;
    const ok: BackupFinished = { ok: true, scheduled: true, id: 's3', message: null };
    await emit('backup-finished', ok);
    await waitFor(() => expect(screen.queryByTestId('status-backup-failed')).toBeNull());
  });

  it('shows a failure recorded before the window opened (after a restart)', async () => {
    shell({ failure: { at: 1_700_000_000, message: WHY, scheduled: false } });
    render(BackupStatusHarness, { onopen: () => {} });
    expect(await screen.findByTestId('status-backup-failed')).toHaveTextContent(`Backup failed`);
  });
});
