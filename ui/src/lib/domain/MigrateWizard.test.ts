import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import MigrateWizard from './MigrateWizard.svelte';
import type { MigrateArgs, MigrateDone } from '../bindings';

afterEach(() => {
  cleanup();
  clearMocks();
});

function report(extra: Partial<MigrateDone> = {}): MigrateDone {
  return {
    target: 'file:///media/drive/copy',
    blueprints: 12,
    invalid: 1,
    resumed: false,
    copied: 0,
    skipped: 0,
    bytes: 0,
    verified: 0,
    dry_run: true,
    backup: null,
    millis: 3,
    ...extra,
  };
}

type Handler = (args: MigrateArgs) => unknown;

/** The shell: `migrate_library` answered by `handler` (a thrown value is the IPC error). */
function shell(handler: Handler, picked: string | null = '/media/drive/copy') {
  const calls: MigrateArgs[] = [];
  mockIPC(
    async (cmd, payload) => {
      if (cmd === 'choose_folder') return picked;
      if (cmd === 'migrate_library') {
        const args = (payload as { args: MigrateArgs }).args;
        calls.push(args);
        return handler(args);
      }
      throw { code: 'internal', message: `unexpected ${cmd}` };
    },
    { shouldMockEvents: true },
  );
  return { calls };
}

async function open(user: ReturnType<typeof userEvent.setup>): Promise<void> {
  render(MigrateWizard);
  await user.click(screen.getByTestId('migrate-open'));
}

describe('the migration wizard', () => {
  it('folder: choose, Check shows what would be copied, Copy shows progress then verified N of N', async () => {
    let finish: (r: MigrateDone) => void = () => undefined;
    const { calls } = shell((args) =>
      args.dry_run
        ? report()
        : new Promise<MigrateDone>((resolve) => {
            finish = resolve;
          }),
    );
    const user = userEvent.setup();
    await open(user);
    expect(screen.getByTestId('migrate-check')).toBeDisabled();
    expect(screen.getByTestId('migrate-copy')).toBeDisabled();
    await user.click(screen.getByTestId('migrate-choose'));
    await waitFor(() => expect(screen.getByTestId('migrate-folder')).toHaveValue('/media/drive/copy'));
    // Copy stays off until the target was checked.
    expect(screen.getByTestId('migrate-copy')).toBeDisabled();
    await user.click(screen.getByTestId('migrate-check'));
    const checked = await screen.findByTestId('migrate-checked');
    expect(checked).toHaveTextContent('12 blueprints would be copied to file:///media/drive/copy');
    expect(checked).toHaveTextContent('1 invalid, copied as they are');
    expect(checked).toHaveTextContent('the target is empty');
    expect(calls[0]).toEqual({
      target: '/media/drive/copy',
      endpoints: [],
      region: '',
      path_style: true,
      access_key_id: '',
      secret_access_key: '',
      backup_first: true,
      dry_run: true,
    });

    await user.click(screen.getByTestId('migrate-backup')); // no backup this time
    await user.click(screen.getByTestId('migrate-copy'));
    expect(await screen.findByTestId('migrate-progress')).toBeInTheDocument();
    await emit('sync-progress', { phase: 'copy', done: 7, total: 23 });
    await waitFor(() => expect(screen.getByTestId('migrate-progress')).toHaveTextContent('copy 7 of 23'));
    expect(calls[1]).toMatchObject({ target: '/media/drive/copy', dry_run: false, backup_first: false });
    finish(report({ dry_run: false, copied: 23, bytes: 4096, verified: 12 }));
    const done = await screen.findByTestId('migrate-done');
    expect(done).toHaveTextContent('Verified 12 of 12 blueprints, byte for byte');
    expect(screen.getByTestId('migrate-target')).toHaveTextContent('file:///media/drive/copy');
    expect(screen.queryByTestId('migrate-progress')).toBeNull();
    // Done: Copy again needs a new Check.
    expect(screen.getByTestId('migrate-copy')).toBeDisabled();
  });

  it('a refused target: the message says why, Copy stays off; changing the target asks for a new Check', async () => {
    const { calls } = shell((args) => {
      if (args.target === '/home/me/full') {
        throw {
          code: 'invalid_argument',
          message:
            'sync configuration: /home/me/full is not empty and is not an earlier attempt of this migration: choose an empty folder',
        };
      }
      return report({ target: `file://${args.target}`, resumed: true, invalid: 0 });
    });
    const user = userEvent.setup();
    await open(user);
    await user.type(screen.getByTestId('migrate-folder'), '/home/me/full');
    await user.click(screen.getByTestId('migrate-check'));
    const err = await screen.findByTestId('migrate-error');
    expect(err.dataset.code).toBe('invalid_argument');
    expect(err).toHaveTextContent('is not empty');
    expect(err.textContent).not.toContain('sync configuration');
    expect(err).toHaveTextContent('choose an empty folder');
    expect(screen.getByTestId('migrate-copy')).toBeDisabled();

    await user.clear(screen.getByTestId('migrate-folder'));
    await user.type(screen.getByTestId('migrate-folder'), '/home/me/half');
    await user.click(screen.getByTestId('migrate-check'));
    expect(await screen.findByTestId('migrate-checked')).toHaveTextContent(
      'an earlier, interrupted copy there will be resumed',
    );
    expect(screen.queryByTestId('migrate-error')).toBeNull();
    expect(screen.getByTestId('migrate-copy')).toBeEnabled();
    await user.type(screen.getByTestId('migrate-folder'), '2');
    expect(screen.getByTestId('migrate-copy')).toBeDisabled();
    expect(calls).toHaveLength(2);
  });

  it('bucket: the fields become an s3 URL, the keys go with the call, store errors get a hint', async () => {
    const { calls } = shell(() => {
      throw { code: 'remote_denied', message: 'team library refused access: 403 InvalidAccessKeyId' };
    });
    const user = userEvent.setup();
    await open(user);
    await user.click(screen.getByTestId('migrate-kind-bucket'));
    expect(screen.getByTestId('migrate-check')).toBeDisabled();
    await user.type(screen.getByTestId('migrate-endpoints'), 'http://127.0.0.1:3900, http://127.0.0.1:3903');
    await user.type(screen.getByTestId('migrate-bucket'), 'archive');
    await user.type(screen.getByTestId('migrate-prefix'), '/2026/');
    await user.type(screen.getByTestId('migrate-region'), 'garage');
    await user.type(screen.getByTestId('migrate-key-id'), 'GK1');
    await user.type(screen.getByTestId('migrate-secret'), 'sec');
    await user.click(screen.getByTestId('migrate-check'));
    const err = await screen.findByTestId('migrate-error');
    expect(err.dataset.code).toBe('remote_denied');
    expect(err).toHaveTextContent('check the access key id and secret');
    expect(err).toHaveTextContent('InvalidAccessKeyId');
    expect(calls[0]).toEqual({
      target: 's3://archive/2026',
      endpoints: ['http://127.0.0.1:3900', 'http://127.0.0.1:3903'],
      region: 'garage',
      path_style: true,
      access_key_id: 'GK1',
      secret_access_key: 'sec',
      backup_first: true,
      dry_run: true,
    });
    expect(screen.getByTestId('migrate-copy')).toBeDisabled();
  });
});
