import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import BackupsHarness from '../test/BackupsHarness.svelte';
import type {
  BackupDone,
  PrunePreviewView,
  RetentionSettings,
  SnapshotFile,
  SnapshotRow,
} from '../lib/bindings';

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

const files: SnapshotFile[] = [
  { path: 'Blueprints/personal/a.blueprint.yaml', source: 'library', size: 100, mtime: 0, hash: 'h1' },
  { path: 'Blueprints/personal/a.blueprint.meta.json', source: 'library', size: 40, mtime: 0, hash: 'h2' },
  { path: 'trash/x/a.blueprint.yaml', source: 'data', size: 90, mtime: 0, hash: 'h3' },
];

const SEALED = 'secrets/backup-secrets.sealed';

function shell(
  opts: { slowBackup?: boolean; snapshots?: SnapshotRow[]; sealed?: boolean; skipped?: string[] } = {},
) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const snapshots: SnapshotRow[] = [...(opts.snapshots ?? [])];
  let retention: RetentionSettings = { keep_last: null, keep_daily: null, keep_weekly: null };
  // Keeps the newest `keep_last` (the only rule this fake knows).
  const select = (r: RetentionSettings): PrunePreviewView => ({
    kept: snapshots.slice(0, r.keep_last ?? snapshots.length),
    removed: snapshots.slice(r.keep_last ?? snapshots.length),
    warnings: [],
  });
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
        case 'set_backup_retention':
        case 'backup_settings':
        case 'set_backup_settings':
          if (cmd === 'set_backup_retention') retention = args.retention as RetentionSettings;
          return {
            retention,
            location: null,
            effective_location: '/data/area/backups',
            default_location: '/data/area/backups',
            schedule: (args.schedule as string) ?? 'off',
            last_backup: null,
          };
        case 'backup_snapshots':
          return snapshots;
        case 'backup_now_with_credentials':
        case 'backup_now': {
          snapshots.unshift(snap('s2', '2026-11-23T15:00:00Z'));
          const done: BackupDone = {
            id: 's2',
            files: 3,
            bytes: 3000,
            new_bytes: 1200,
            millis: 12,
            repository: '/data/area/backups',
            skipped: opts.skipped ?? [],
            verify: { id: 's2', ok: true, files: 3, objects: 3, bytes: 3000, problems: [], millis: 3 },
          };
          return done;
        }
        case 'snapshot_contents':
          return opts.sealed
            ? [...files, { path: SEALED, source: 'data', size: 300, mtime: 0, hash: 'h4' }]
            : files;
        case 'prune_preview':
          return select(args.retention as RetentionSettings);
        case 'prune_backups': {
          retention = args.retention as RetentionSettings;
          const { kept, removed } = select(retention);
          snapshots.splice(0, snapshots.length, ...kept);
          return {
            kept: kept.length,
            removed: removed.map((s) => s.id),
            objects_removed: 2,
            bytes_freed: 2048,
            warnings: [],
            millis: 5,
          };
        }
        case 'restore_snapshot_to_with_credentials':
          if (args.passphrase !== 'correct horse') {
            throw { code: 'wrong_key', message: 'wrong passphrase: nothing was restored' };
          }
          return {
            id: args.id,
            to: args.to,
            files: 3,
            bytes: 3000,
            not_restored: [],
            millis: 9,
            before: null,
            credentials: ['crm-token'],
          };
        case 'choose_folder':
          return '/tmp/restored';
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

  it('says which items a backup left out, and nothing when it left out none', async () => {
    shell({ skipped: ['/lib/Blueprints/alias.blueprint.yaml: a symbolic link, not backed up'] });
    const user = userEvent.setup();
    render(BackupsHarness);
    await user.click(await screen.findByTestId('backup-now'));
    const result = await screen.findByTestId('backup-result');
    expect(within(result).getByTestId('backup-skipped')).toHaveTextContent('Not in this snapshot (1 item)');
    expect(result).toHaveTextContent('alias.blueprint.yaml: a symbolic link, not backed up');
    cleanup();
    clearMocks();
    shell();
    render(BackupsHarness);
    await user.click(await screen.findByTestId('backup-now'));
    expect(await screen.findByTestId('backup-result')).toBeInTheDocument();
    expect(screen.queryByTestId('backup-skipped')).toBeNull();
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

describe('pruning old backups', () => {
  const three = () => [
    snap('s3', '2026-11-23T15:00:00Z'),
    snap('s2', '2026-11-22T15:00:00Z'),
    snap('s1', '2026-11-21T15:00:00Z'),
  ];

  it('previews what goes with dates and sizes, then prunes after confirmation', async () => {
    const { calls } = shell({ snapshots: three() });
    const user = userEvent.setup();
    const confirm = vi.spyOn(window, 'confirm').mockReturnValue(true);
    render(BackupsHarness);
    const keepLast = await screen.findByTestId('prune-keep-last');
    // No rule yet: nothing to preview.
    expect(screen.getByTestId('prune-preview')).toBeDisabled();
    expect(screen.getByTestId('prune-now')).toBeDisabled();
    await user.type(keepLast, '1');
    await user.tab();
    await waitFor(() =>
      expect(calls.find((c) => c.cmd === 'set_backup_retention')?.args).toEqual({
        retention: { keep_last: 1, keep_daily: null, keep_weekly: null },
      }),
    );
    await user.click(screen.getByTestId('prune-preview'));
    const removed = await screen.findAllByTestId('prune-removed-row');
    expect(removed.map((r) => r.dataset.id)).toEqual(['s2', 's1']);
    expect(removed[0]).toHaveTextContent('3 files');
    expect(removed[0]).toHaveTextContent('Nov 22, 2026');
    expect(removed[0]).toHaveTextContent('2.9 KB');
    expect(screen.getAllByTestId('prune-kept-row').map((r) => r.dataset.id)).toEqual(['s3']);
    // The preview changed nothing.
    expect(calls.some((c) => c.cmd === 'prune_backups')).toBe(false);

    await user.click(screen.getByTestId('prune-now'));
    expect(confirm).toHaveBeenCalledOnce();
    expect(confirm.mock.calls[0]![0]).toContain('Forget 2 backups');
    const result = await screen.findByTestId('prune-result');
    expect(result).toHaveTextContent('Forgot 2 backups');
    expect(result).toHaveTextContent('freed 2.0 KB');
    expect(calls.find((c) => c.cmd === 'prune_backups')?.args).toEqual({
      retention: { keep_last: 1, keep_daily: null, keep_weekly: null },
    });
    await waitFor(() => expect(screen.getAllByTestId('snapshot')).toHaveLength(1));
    expect(screen.queryByTestId('prune-preview-result')).toBeNull();
  });

  it('does nothing when the confirmation is declined, and refuses rules that are not whole numbers', async () => {
    const { calls } = shell({ snapshots: three() });
    const user = userEvent.setup();
    vi.spyOn(window, 'confirm').mockReturnValue(false);
    render(BackupsHarness);
    await user.type(await screen.findByTestId('prune-keep-weekly'), '0');
    expect(screen.getByTestId('prune-invalid')).toHaveTextContent('whole number of 1 or more');
    expect(screen.getByTestId('prune-preview')).toBeDisabled();
    await user.clear(screen.getByTestId('prune-keep-weekly'));
    await user.type(screen.getByTestId('prune-keep-last'), '2');
    await user.click(screen.getByTestId('prune-preview'));
    expect((await screen.findAllByTestId('prune-removed-row')).map((r) => r.dataset.id)).toEqual(['s1']);
    await user.click(screen.getByTestId('prune-now'));
    expect(calls.some((c) => c.cmd === 'prune_backups')).toBe(false);
    expect(screen.getAllByTestId('snapshot')).toHaveLength(3);
  });
});

describe('credentials in backups', () => {
  it('backs up with credentials only after the passphrase is typed twice (8 or more characters)', async () => {
    const { calls } = shell();
    const user = userEvent.setup();
    render(BackupsHarness);
    await user.click(await screen.findByTestId('backup-with-credentials'));
    expect(screen.getByTestId('backup-now')).toBeDisabled();
    await user.type(screen.getByTestId('backup-passphrase'), 'short');
    expect(screen.getByTestId('backup-passphrase-problem')).toHaveTextContent('at least 8 characters');
    await user.clear(screen.getByTestId('backup-passphrase'));
    await user.type(screen.getByTestId('backup-passphrase'), 'correct horse');
    await user.type(screen.getByTestId('backup-passphrase-again'), 'correct hors');
    expect(screen.getByTestId('backup-passphrase-problem')).toHaveTextContent('differ');
    expect(screen.getByTestId('backup-now')).toBeDisabled();
    await user.type(screen.getByTestId('backup-passphrase-again'), 'e');
    expect(screen.getByTestId('backup-now')).toBeEnabled();
    await user.click(screen.getByTestId('backup-now'));
    expect(await screen.findByTestId('backup-sealed')).toBeInTheDocument();
    expect(calls.find((c) => c.cmd === 'backup_now_with_credentials')?.args).toEqual({
      passphrase: 'correct horse',
    });
    expect(calls.some((c) => c.cmd === 'backup_now')).toBe(false);
    // The passphrase is not kept around.
    expect(screen.queryByTestId('backup-passphrase')).toBeNull();
  });

  it('asks for the passphrase to restore a snapshot that carries credentials; a wrong one restores nothing', async () => {
    const { calls } = shell({ snapshots: [snap('s1', '2026-11-21T15:00:00Z')], sealed: true });
    const user = userEvent.setup();
    render(BackupsHarness);
    await user.click((await screen.findAllByTestId('snapshot'))[0]!);
    await screen.findByTestId('restore-credentials-form');
    expect(screen.getByTestId('restore-with-credentials')).toBeChecked();
    // No passphrase: asked for, no folder chosen, nothing called.
    await user.click(screen.getByText('Restore all to a folder…'));
    expect(await screen.findByText(/Type the backup passphrase/)).toBeInTheDocument();
    expect(calls.some((c) => c.cmd === 'choose_folder')).toBe(false);

    await user.type(screen.getByTestId('restore-passphrase'), 'wrong passphrase');
    await user.click(screen.getByText('Restore all to a folder…'));
    expect(await screen.findByText('wrong passphrase: nothing was restored')).toBeInTheDocument();
    expect(screen.queryByTestId('restore-result')).toBeNull();

    await user.clear(screen.getByTestId('restore-passphrase'));
    await user.type(screen.getByTestId('restore-passphrase'), 'correct horse');
    await user.click(screen.getByText('Restore all to a folder…'));
    expect(await screen.findByTestId('restore-credentials')).toHaveTextContent(
      'Restored 1 credential value: crm-token',
    );
    expect(calls.filter((c) => c.cmd === 'restore_snapshot_to_with_credentials').at(-1)?.args).toEqual({
      id: 's1',
      to: '/tmp/restored',
      partial: false,
      passphrase: 'correct horse',
    });
  });

  it('restores without credentials when the snapshot has none (no passphrase asked)', async () => {
    shell({ snapshots: [snap('s1', '2026-11-21T15:00:00Z')] });
    const user = userEvent.setup();
    render(BackupsHarness);
    await user.click((await screen.findAllByTestId('snapshot'))[0]!);
    await screen.findByTestId('snapshot-files');
    expect(screen.queryByTestId('restore-credentials-form')).toBeNull();
  });
});
