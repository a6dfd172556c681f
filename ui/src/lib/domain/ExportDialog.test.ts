import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import ExportHarness from '../../test/ExportHarness.svelte';
import { AppModel } from '../app.svelte';
import type { ExportDone, ExportPreview, ExportScope } from '../bindings';

afterEach(() => {
  cleanup();
  clearMocks();
});

function shell(warnings: ExportPreview['warnings']) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC((cmd, payload) => {
    const args = (payload ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args });
    if (cmd === 'export_preview') {
      const scope = args.scope as ExportScope;
      const preview: ExportPreview = {
        paths: scope.paths.length ? scope.paths : ['a.blueprint.yaml', 'b.blueprint.yaml'],
        warnings,
        default_bundle: '/lib/Exports/export-1.zip',
      };
      return preview;
    }
    if (cmd === 'export_blueprints') {
      const done: ExportDone = {
        exported: ['a.blueprint.yaml'],
        to: '/lib/Exports/export-1.zip',
        kind: 'bundle',
        warnings,
        files: 1,
        bytes: 10,
        millis: 1,
      };
      return done;
    }
    throw { code: 'internal', message: `unexpected ${cmd}` };
  });
  return calls;
}

describe('the export dialog', () => {
  it('offers the selection first, and exports a bundle when the scan is clean', async () => {
    const calls = shell([]);
    const model = new AppModel();
    model.selected = 'Blueprints/personal/a.blueprint.yaml';
    model.folder = 'Blueprints/personal';
    let closed = 0;
    const user = userEvent.setup();
    render(ExportHarness, { props: { model, onclose: () => (closed += 1) } });
    expect(await screen.findByTestId('export-count')).toHaveTextContent('1 blueprint');
    expect(calls[0]).toEqual({
      cmd: 'export_preview',
      args: {
        scope: { paths: ['Blueprints/personal/a.blueprint.yaml'], folder: null, tags: [], search: null },
      },
    });
    expect(screen.getByText('Export to a folder…')).toBeInTheDocument();
    await user.click(screen.getByLabelText('The folder Blueprints/personal'));
    await waitFor(() => expect(screen.getByTestId('export-count')).toHaveTextContent('2 blueprints'));
    await user.click(screen.getByTestId('export-go'));
    await waitFor(() => expect(closed).toBe(1));
    expect(calls.at(-1)).toEqual({
      cmd: 'export_blueprints',
      args: {
        scope: { paths: [], folder: 'Blueprints/personal', tags: [], search: null },
        folder: null,
        allow_secrets: false,
        reveal: true,
      },
    });
  });

  it('shows the secret scan findings and exports only with "Export anyway"', async () => {
    const calls = shell([
      { path: 'Blueprints/personal/a.blueprint.yaml', line: 6, kind: 'openai-key', hint: 'sk-p…12' },
    ]);
    const model = new AppModel();
    const user = userEvent.setup();
    render(ExportHarness, { props: { model, onclose: () => {} } });
    const warnings = await screen.findByTestId('export-warnings');
    expect(warnings).toHaveTextContent('1 possible credential found');
    expect(warnings).toHaveTextContent('Blueprints/personal/a.blueprint.yaml line 6: openai-key');
    const go = screen.getByTestId('export-go');
    expect(go).toHaveTextContent('Export anyway');
    await user.click(go);
    await waitFor(() => expect(calls.at(-1)?.cmd).toBe('export_blueprints'));
    expect(calls.at(-1)?.args.allow_secrets).toBe(true);
    // The whole library: folder "" (no selection, folder, tags or search in the app).
    expect((calls.at(-1)?.args.scope as ExportScope).folder).toBe('');
  });
});
