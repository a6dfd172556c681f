import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import DetailPaneHarness from '../../test/DetailPaneHarness.svelte';
import { AppModel } from '../app.svelte';
import type { BlueprintDetail, Item } from '../bindings';
import { item } from '../../test/fake-shell';

afterEach(() => {
  cleanup();
  clearMocks();
});

const PATH = 'Blueprints/personal/bp-001.blueprint.yaml';

/** A shell holding one blueprint: encrypted (and locked, when its key is missing) or plain. */
function shell(model: AppModel, start: { encrypted: boolean; locked?: string }) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  let current: Item = item(1, { encrypted: start.encrypted, hash: 'sealed-hash' });
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      if (cmd === 'get_blueprint') {
        const detail: BlueprintDetail = {
          item: current,
          yaml: 'name: Blueprint 1\nnodes: []\n',
          editable: !start.locked,
          file: `/lib/${PATH}`,
          secrets: [],
          locked: current.encrypted ? (start.locked ?? null) : null,
          check: { problem: null, nodes: [], edges: [], yaml_tags: [], yaml_description: null },
        };
        return detail;
      }
      if (cmd === 'decrypt_blueprint') {
        current = { ...current, encrypted: false, hash: 'plain-hash' };
        // The app refetches on the shell's change event (listened to outside the pane).
        setTimeout(() => model.client.invalidate());
        return current;
      }
      if (cmd === 'history') return [];
      throw { code: 'internal', message: `unexpected ${cmd}` };
    },
    { shouldMockEvents: true },
  );
  return calls;
}

describe('the detail pane encryption toggle', () => {
  it('decrypts an encrypted blueprint only after a confirmation, with the hash it showed', async () => {
    const model = new AppModel();
    const calls = shell(model, { encrypted: true });
    render(DetailPaneHarness, { model, path: PATH });
    const user = userEvent.setup();
    await user.click(await screen.findByTestId('decrypt'));
    expect(calls.some((c) => c.cmd === 'decrypt_blueprint')).toBe(false);
    expect(screen.getByTestId('decrypt-confirm').textContent).toContain('plain text on disk');
    await user.click(screen.getByTestId('decrypt-confirm-button'));
    await waitFor(() => expect(calls.find((c) => c.cmd === 'decrypt_blueprint')).toBeTruthy());
    expect(calls.find((c) => c.cmd === 'decrypt_blueprint')?.args).toEqual({
      path: PATH,
      if_match: 'sealed-hash',
    });
    // Plain again: the toggle offers encryption.
    await waitFor(() => expect(screen.queryByTestId('decrypt-confirm')).toBeNull());
    expect(await screen.findByTestId('encrypt')).toBeTruthy();
  });

  it('cancelling the confirmation changes nothing', async () => {
    const model = new AppModel();
    const calls = shell(model, { encrypted: true });
    render(DetailPaneHarness, { model, path: PATH });
    const user = userEvent.setup();
    await user.click(await screen.findByTestId('decrypt'));
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByTestId('decrypt-confirm')).toBeNull();
    expect(calls.some((c) => c.cmd === 'decrypt_blueprint')).toBe(false);
  });

  it('offers no decryption while the key is missing, and Encrypt for a plain blueprint', async () => {
    const model = new AppModel();
    shell(model, { encrypted: true, locked: 'the master key is not in keyutils' });
    const { unmount } = render(DetailPaneHarness, { model, path: PATH });
    await screen.findByText(/its key is not at hand/);
    expect(screen.queryByTestId('decrypt')).toBeNull();
    expect(screen.queryByTestId('encrypt')).toBeNull();
    unmount();
    clearMocks();
    const plain = new AppModel();
    shell(plain, { encrypted: false });
    render(DetailPaneHarness, { model: plain, path: PATH });
    expect(await screen.findByTestId('encrypt')).toBeTruthy();
    expect(screen.queryByTestId('decrypt')).toBeNull();
  });
});
