import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import BackupsHarness from '../test/BackupsHarness.svelte';
import type { BackupDone, SnapshotFile, SnapshotRow } from '../lib/bindings';

afterEach(() => {
  cleanup();
  clearMocks();
});

const snap = (id: string, created: string): SnapshotRow => ({
  id,
  created,
  library: '/lib',
  files: 3,
  bytes: 3000,
  new_bytes: 1200,
});

const files: SnapshotFile[] = [
  { path: 'Blueprints/personal/a.blueprint.yaml', source: 'library', size: 100, mtime: 0, hash: 'h1' },
  { path: 'Blueprints/personal/a.blueprint.meta.json', source: 'library', size: 40, mtime: 0, hash: 'h2' },
  { path: 'trash/x/a.blueprint.yaml', source: 'data', size: 90, mtime: 0, hash: 'h3' },
];

function shell(opts: { slowBackup?: boolean } = {}) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const snapshots: SnapshotRow[] = [];
  let cancelRunning: (() => void) | null = null;
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      if (cmd === 'backup_now' && opts.slowBackup) {
        // Runs until cancelled, as a long backup would.
        return new Promise((_, reject) => {
          cancelRunning = () => reject({ code: 'cancelled', message: 'cancelled' });
        });
      }
      if (cmd === 'cancel_operation') {
        cancelRunning?.();
        return cancelRunning !== null;
      }
      switch (cmd) {
        case 'backup_settings':
        case 'set_backup_settings':
          return {
            location: null,
            effective_location: '/data/area/backups',
            default_location: '/data/area/backups',
            schedule: (args.schedule as string) ?? 'off',
            last_backup: null,
          };
        case 'backup_snapshots':
          return snapshots;
        case 'backup_now': {
          snapshots.unshift(snap('s2', '2026-11-23T15:00:00Z'));
          const done: BackupDone = {
            id: 's2',
            files: 3,
            bytes: 3000,
            new_bytes: 1200,
            millis: 12,
            repository: '/data/area/backups',
            skipped: [],
            verify: { id: 's2', ok: true, files: 3, objects: 3, bytes: 3000, problems: [], millis: 3 },
          };
          return done;
        }
        case 'snapshot_contents':
          return files;
        case 'restore_from_snapshot':
          return args.path;
        default:
          throw { code: 'internal', message: `unexpected ${cmd}` };
      }
    },
    { shouldMockEvents: true },
  );
  return { calls };
}

describe('the Backups view', () => {
  it('starts empty, backs up, shows the verified snapshot and its blueprint files', async () => {
    const { calls } = shell();
    const user = userEvent.setup();
    render(BackupsHarness);
    expect(await screen.findByText('No backups yet')).toBeInTheDocument();
    expect(screen.getByTestId('backup-location')).toHaveTextContent('/data/area/backups');
    await user.click(screen.getByTestId('backup-now'));
    const result = await screen.findByTestId('backup-result');
    expect(result).toHaveTextContent('Backed up and verified');
    expect(result).toHaveTextContent('3 files');
    await waitFor(() => expect(screen.getAllByTestId('snapshot')).toHaveLength(1));
    // The new snapshot is selected: its library files, with Restore on the blueprint only.
    const list = await screen.findByTestId('snapshot-files');
    const rows = within(list).getAllByTestId('snapshot-file');
    expect(rows.map((r) => r.dataset.path)).toEqual([
      'Blueprints/personal/a.blueprint.yaml',
      'Blueprints/personal/a.blueprint.meta.json',
    ]);
    expect(within(rows[1]!).queryByTestId('restore-file')).toBeNull();
    await user.click(within(rows[0]!).getByTestId('restore-file'));
    await waitFor(() =>
      expect(calls.at(-1)).toEqual({
        cmd: 'restore_from_snapshot',
        args: { id: 's2', path: 'Blueprints/personal/a.blueprint.yaml' },
      }),
    );
  });

  it('saves the automatic schedule', async () => {
    const { calls } = shell();
    const user = userEvent.setup();
    render(BackupsHarness);
    await user.selectOptions(await screen.findByTestId('backup-schedule'), 'daily');
    await waitFor(() =>
      expect(calls.find((c) => c.cmd === 'set_backup_settings')?.args).toEqual({
        location: null,
        schedule: 'daily',
      }),
    );
  });

  it('shows progress while backing up, and Cancel stops it with nothing changed', async () => {
    const { calls } = shell({ slowBackup: true });
    const user = userEvent.setup();
    render(BackupsHarness);
    await user.click(await screen.findByTestId('backup-now'));
    expect(screen.getByTestId('backup-now')).toBeDisabled();
    await emit('operation-progress', { op: 'backup', phase: 'backup', done: 25, total: 100 });
    await waitFor(() => expect(screen.getByTestId('backup-progress')).toHaveTextContent('backup 25 of 100'));
    await user.click(screen.getByTestId('backup-cancel'));
    expect(calls.find((c) => c.cmd === 'cancel_operation')?.args).toEqual({ op: 'backup' });
    expect(await screen.findByText('Cancelled: nothing was changed.')).toBeInTheDocument();
    expect(screen.queryByTestId('backup-progress')).toBeNull();
    expect(screen.getByTestId('backup-now')).toBeEnabled();
  });
});
