import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import ImportDialog from './ImportDialog.svelte';
import { ImportFlow } from '../transfer.svelte';
import type { Caller } from '../query.svelte';
import { samplePlan, summary } from '../../test/import-fixtures';

afterEach(cleanup);

function setup() {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const call = (async (cmd: string, args: Record<string, unknown>) => {
    calls.push({ cmd, args });
    if (cmd === 'import_plan') return samplePlan((args.into as string | null) ?? null);
    if (cmd === 'import_apply') return summary;
    throw { code: 'internal', message: `unexpected ${cmd}` };
  }) as unknown as Caller;
  const flow = new ImportFlow(call);
  let done = 0;
  render(ImportDialog, {
    props: { flow, folders: [{ path: 'Team/flows', count: 3 }], ondone: () => (done += 1) },
  });
  return { calls, flow, done: () => done };
}

describe('the import report dialog', () => {
  it('shows every item with its class, reasons and lines', async () => {
    const { flow } = setup();
    await flow.start(['/drop/flows']);
    const rows = await screen.findAllByTestId('import-item');
    expect(rows.map((r) => r.dataset.class)).toEqual([
      'conflict',
      'conflict',
      'new',
      'new',
      'invalid',
      'refused',
      'identical',
    ]);
    expect(screen.getByTestId('import-counts')).toHaveTextContent(
      '2 new 1 identical 2 conflicts 1 invalid 1 refused',
    );
    const invalid = rows.find((r) => r.dataset.class === 'invalid')!;
    expect(invalid).toHaveTextContent('line 3: expected a mapping');
    const refused = rows.find((r) => r.dataset.class === 'refused')!;
    expect(refused).toHaveTextContent('entry escapes the archive (..)');
    expect(screen.getByText(/1 other file left alone/)).toBeInTheDocument();
    expect(screen.getByTestId('import-apply')).toHaveTextContent('Import 2 blueprints');
  });

  it('sends the per-item and "for all" choices, then shows the summary', async () => {
    const user = userEvent.setup();
    const { flow, calls, done } = setup();
    await flow.start(['/drop/flows']);
    await screen.findAllByTestId('import-item');
    await user.click(screen.getByLabelText('Keep both (rename)'));
    const first = screen.getAllByTestId('import-item')[0]!;
    await user.selectOptions(within(first).getByTestId('item-choice'), 'overwrite');
    const newRow = screen.getAllByTestId('import-item').find((r) => r.dataset.n === '6')!;
    await user.click(within(newRow).getByRole('checkbox'));
    expect(screen.getByTestId('import-apply')).toHaveTextContent('Import 3 blueprints');
    await user.click(screen.getByTestId('import-apply'));
    await waitFor(() => expect(screen.getByTestId('import-summary')).toBeInTheDocument());
    expect(calls.at(-1)).toEqual({
      cmd: 'import_apply',
      args: {
        plan_id: 7,
        on_conflict: 'rename',
        decisions: [
          { n: 2, choice: 'overwrite' },
          { n: 6, choice: 'skip' },
        ],
      },
    });
    expect(screen.getByTestId('summary-imported')).toHaveTextContent('1');
    expect(screen.getByTestId('summary-errors')).toHaveTextContent('1');
    expect(screen.getByTestId('import-summary')).toHaveTextContent('line 3: expected a mapping');
    await user.click(screen.getByTestId('import-close'));
    expect(done()).toBe(1);
    expect(flow.phase).toBe('idle');
  });

  it('choosing a target folder makes the report again', async () => {
    const user = userEvent.setup();
    const { flow, calls } = setup();
    await flow.start(['/drop/flows']);
    await screen.findAllByTestId('import-item');
    await user.selectOptions(screen.getByTestId('import-into'), 'Team/flows');
    await waitFor(() =>
      expect(calls.at(-1)).toEqual({
        cmd: 'import_plan',
        args: { sources: ['/drop/flows'], into: 'Team/flows' },
      }),
    );
    await waitFor(() =>
      expect(screen.getAllByTestId('import-item')[0]).toHaveTextContent('Team/flows/f2.blueprint.yaml'),
    );
  });
});
