import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import KeyCardHarness from '../../test/KeyCardHarness.svelte';
import { AppModel } from '../app.svelte';
import type { KeyStatus } from '../bindings';

afterEach(() => {
  cleanup();
  clearMocks();
});

const OK: KeyStatus = { state: 'ok', key_id: 'abc123', encrypted_blueprints: 2, message: '' };

function shell() {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC((cmd, payload) => {
    const args = (payload ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args });
    if (cmd === 'audit_log') return [];
    if (cmd === 'recovery_kit') return 'BLUEPRINT VAULT — RECOVERY KIT\n…';
    if (cmd === 'recover_key') throw { code: 'wrong_key', message: 'the recovery passphrase is wrong' };
    throw { code: 'internal', message: `unexpected ${cmd}` };
  });
  return calls;
}

describe('the encryption key card', () => {
  it('makes a kit only once the passphrase is long enough and typed twice alike', async () => {
    const calls = shell();
    render(KeyCardHarness, { model: new AppModel(), status: OK });
    const user = userEvent.setup();
    await user.click(screen.getByTestId('make-kit'));
    const create = screen.getByTestId('kit-create') as HTMLButtonElement;
    await user.type(screen.getByTestId('kit-passphrase'), 'short');
    expect(create.disabled).toBe(true);
    expect(screen.getByText(/At least 12 characters/)).toBeTruthy();
    await user.clear(screen.getByTestId('kit-passphrase'));
    await user.type(screen.getByTestId('kit-passphrase'), 'a long passphrase');
    await user.type(screen.getByTestId('kit-passphrase-again'), 'a long passphrasE');
    expect(create.disabled).toBe(true);
    expect(screen.getByText(/do not match/)).toBeTruthy();
    await user.clear(screen.getByTestId('kit-passphrase-again'));
    await user.type(screen.getByTestId('kit-passphrase-again'), 'a long passphrase');
    expect(create.disabled).toBe(false);
    await user.click(create);
    await waitFor(() => expect(screen.getByTestId('kit-page').textContent).toContain('RECOVERY KIT'));
    expect(calls.find((c) => c.cmd === 'recovery_kit')?.args).toEqual({ passphrase: 'a long passphrase' });
  });

  it('shows why a recovery was refused', async () => {
    shell();
    render(KeyCardHarness, { model: new AppModel(), status: OK });
    const user = userEvent.setup();
    await user.click(screen.getByTestId('recover-kit'));
    await user.type(screen.getByTestId('kit-text'), 'kit');
    await user.type(screen.getByTestId('recover-passphrase'), 'wrong');
    await user.click(screen.getByTestId('recover-submit'));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('passphrase is wrong'));
  });

  it('offers no kit before anything is encrypted', () => {
    shell();
    render(KeyCardHarness, { model: new AppModel(), status: { ...OK, state: 'none', key_id: null } });
    expect(screen.queryByTestId('make-kit')).toBeNull();
    expect(screen.queryByTestId('recover-kit')).toBeNull();
  });
});
