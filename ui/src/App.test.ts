import { afterEach, describe, expect, it } from 'vitest';
import { render, screen, waitFor, within, cleanup } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks } from '@tauri-apps/api/mocks';
import App from './App.svelte';
import { installFakeShell } from './test/fake-shell';

afterEach(() => {
  cleanup();
  clearMocks();
});

const rowNames = () => screen.queryAllByTestId('blueprint-row').map((r) => r.getAttribute('data-path'));

describe('the main window', () => {
  it('opens the startup library and lists its blueprints', async () => {
    const shell = installFakeShell(30);
    render(App);
    await waitFor(() => expect(screen.getByTestId('status-count')).toHaveTextContent('30 blueprints'));
    await waitFor(() => expect(rowNames().length).toBeGreaterThan(0));
    expect(shell.calls.find((c) => c.cmd === 'open_library')?.args).toEqual({ path: null });
    expect(screen.getByTestId('result-count')).toHaveTextContent('30 blueprints');
  });

  it('searches as you type, applies only the last text, and highlights safely', async () => {
    const shell = installFakeShell(30);
    shell.snippets.set(
      'Blueprints/personal/bp-012.blueprint.yaml',
      '<img src=x onerror="window.__pwned=1"> the <mark>Blueprint 12</mark> digest',
    );
    const user = userEvent.setup();
    render(App);
    const box = await screen.findByRole('searchbox', { name: 'Search blueprints' });
    await user.type(box, 'Blueprint 12');
    await waitFor(() =>
      expect(screen.getByTestId('result-count')).toHaveTextContent('1 match for “Blueprint 12”'),
    );
    const searches = shell.calls.filter((c) => c.cmd === 'search_items');
    expect(searches.length).toBeLessThan('Blueprint 12'.length);
    const row = screen.getAllByTestId('blueprint-row')[0]!;
    expect(row.querySelector('img')).toBeNull();
    expect(row).toHaveTextContent('="window.__pwned=1"> the Blueprint 12 digest');
    expect([...row.querySelectorAll('mark')].map((m) => m.textContent)).toContain('Blueprint 12');
  });

  it('focuses the search box with Ctrl+K', async () => {
    installFakeShell(3);
    const user = userEvent.setup();
    render(App);
    const box = await screen.findByRole('searchbox', { name: 'Search blueprints' });
    expect(box).not.toHaveFocus();
    await user.keyboard('{Control>}k{/Control}');
    expect(box).toHaveFocus();
  });

  it('shows a blueprint, edits its tags with the loaded hash, and reports a conflict', async () => {
    const shell = installFakeShell(5);
    const user = userEvent.setup();
    render(App);
    await waitFor(() => expect(rowNames().length).toBe(5));
    await user.click(screen.getAllByTestId('blueprint-row')[2]!);
    const detail = await screen.findByTestId('detail');
    expect(within(detail).getByTestId('detail-name')).toHaveTextContent('Blueprint 2');
    expect(within(detail).getByTestId('graph')).toHaveAttribute(
      'aria-label',
      'Workflow picture: 2 steps, 1 connections',
    );

    await user.type(within(detail).getByRole('textbox', { name: 'Add tag' }), 'sales{Enter}');
    await waitFor(() => expect(shell.calls.some((c) => c.cmd === 'update_meta')).toBe(true));
    expect(shell.calls.find((c) => c.cmd === 'update_meta')?.args).toEqual({
      path: 'Blueprints/personal/bp-002.blueprint.yaml',
      edit: { tags: ['sales'], description: null, if_match: 'hash-2' },
    });

    shell.failNext.set('update_meta', { code: 'conflict', message: 'changed on disk' });
    await user.type(
      within(await screen.findByTestId('detail')).getByRole('textbox', { name: 'Add tag' }),
      'x{Enter}',
    );
    expect(await screen.findByText('Changed on disk')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Reload' })).toBeInTheDocument();
  });

  it('deletes to the Trash and offers Undo', async () => {
    const shell = installFakeShell(4);
    const user = userEvent.setup();
    render(App);
    await waitFor(() => expect(rowNames().length).toBe(4));
    await user.click(screen.getAllByTestId('blueprint-row')[0]!);
    await user.click(await screen.findByTestId('delete'));
    expect(await screen.findByText('Moved “Blueprint 0” to the Trash')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Undo' })).toBeInTheDocument();
    await waitFor(() => expect(rowNames()).not.toContain('Blueprints/personal/bp-000.blueprint.yaml'));
    expect(shell.items).toHaveLength(3);
  });

  it('explains why the library cannot be opened', async () => {
    const shell = installFakeShell(1);
    shell.failNext.set('open_library', { code: 'library_in_use', message: 'open in another window' });
    render(App);
    expect(await screen.findByText('This library is open in another window')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Choose another folder…' })).toBeInTheDocument();
  });

  it('shows a failed backup in the status bar until fixed, and opens Backups from it', async () => {
    const shell = installFakeShell(3);
    const why = 'the snapshot failed its verification: 1 object damaged';
    shell.backupFailure = { at: Math.floor(Date.now() / 1000), message: why, scheduled: true };
    const user = userEvent.setup();
    render(App);
    const item = await screen.findByTestId('status-backup-failed');
    expect(
      within(screen.getByRole('contentinfo', { name: 'Status' })).getByTestId('status-backup-failed'),
    ).toBe(item);
    expect(item).toHaveTextContent(`Automatic backup failed just now: ${why}`);
    await user.click(item);
    expect(await screen.findByTestId('backups-view')).toBeInTheDocument();
  });
});
