import { describe, expect, it } from 'vitest';
import { ImportFlow, reasonOf, sortedItems } from './transfer.svelte';
import type { Caller } from './query.svelte';
import { planItem, samplePlan, summary } from '../test/import-fixtures';
import { CommandError } from './ipc';

/** A caller that records calls and answers from a table (a function may throw). */
function recorder(answers: Record<string, (args: Record<string, unknown>) => unknown>) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const call = (async (cmd: string, args: Record<string, unknown>) => {
    calls.push({ cmd, args });
    const answer = answers[cmd];
    if (!answer) throw new CommandError('internal', `unexpected ${cmd}`);
    return answer(args);
  }) as unknown as Caller;
  return { calls, call };
}

describe('the import flow', () => {
  it('checks the dropped paths first and writes nothing until Import', async () => {
    const { calls, call } = recorder({ import_plan: () => samplePlan() });
    const flow = new ImportFlow(call);
    await flow.start(['/drop/flows', '  ']);
    expect(calls).toEqual([{ cmd: 'import_plan', args: { sources: ['/drop/flows'], into: null } }]);
    expect(flow.phase).toBe('report');
    expect(flow.plan?.counts.conflict).toBe(2);
  });

  it('defaults: new items are imported, conflicts skipped, nothing to choose for the rest', async () => {
    const { call } = recorder({ import_plan: () => samplePlan() });
    const flow = new ImportFlow(call);
    await flow.start(['/drop/flows']);
    const byN = (n: number) => flow.plan!.items.find((i) => i.n === n)!;
    expect(flow.choiceOf(byN(0))).toBe('import');
    expect(flow.choiceOf(byN(2))).toBe('skip');
    expect(flow.choiceOf(byN(1))).toBeNull();
    expect(flow.choiceOf(byN(4))).toBeNull();
    expect(flow.choiceOf(byN(5))).toBeNull();
    expect(flow.toWrite).toBe(2);
    expect(flow.decisions()).toEqual([]);
  });

  it('per-item choices override "for all", and "for all" resets them', async () => {
    const { call } = recorder({ import_plan: () => samplePlan() });
    const flow = new ImportFlow(call);
    await flow.start(['/drop/flows']);
    const [c2, c3, n6] = [2, 3, 6].map((n) => flow.plan!.items.find((i) => i.n === n)!);
    flow.choose(c2!, 'overwrite');
    flow.choose(n6!, 'skip');
    expect(flow.decisions()).toEqual([
      { n: 2, choice: 'overwrite' },
      { n: 6, choice: 'skip' },
    ]);
    expect(flow.toWrite).toBe(2); // f0 and the overwrite; f6 left out, f3 skipped
    flow.chooseAll('rename');
    expect(flow.choiceOf(c2!)).toBe('rename');
    expect(flow.choiceOf(c3!)).toBe('rename');
    // The new item's own choice survives a "for all" on conflicts.
    expect(flow.decisions()).toEqual([{ n: 6, choice: 'skip' }]);
    flow.choose(c3!, 'skip');
    expect(flow.decisions()).toEqual([
      { n: 3, choice: 'skip' },
      { n: 6, choice: 'skip' },
    ]);
  });

  it('applies the plan by its id with the choices, then shows the summary', async () => {
    const { calls, call } = recorder({ import_plan: () => samplePlan(), import_apply: () => summary });
    const flow = new ImportFlow(call);
    await flow.start(['/drop/flows']);
    flow.chooseAll('overwrite');
    flow.choose(flow.plan!.items[3]!, 'rename');
    const done = await flow.apply();
    expect(done).toEqual(summary);
    expect(calls.at(-1)).toEqual({
      cmd: 'import_apply',
      args: { plan_id: 7, on_conflict: 'overwrite', decisions: [{ n: 3, choice: 'rename' }] },
    });
    expect(flow.phase).toBe('done');
  });

  it('a new target folder makes a new report', async () => {
    const { calls, call } = recorder({
      import_plan: (a) => samplePlan((a.into as string | null) ?? null, a.into ? 8 : 7),
    });
    const flow = new ImportFlow(call);
    await flow.start(['/drop/flows']);
    flow.choose(flow.plan!.items[2]!, 'overwrite');
    await flow.setInto('Blueprints/shared');
    expect(calls.at(-1)).toEqual({
      cmd: 'import_plan',
      args: { sources: ['/drop/flows'], into: 'Blueprints/shared' },
    });
    expect(flow.plan?.plan_id).toBe(8);
    expect(flow.plan?.items[0]?.target).toBe('Blueprints/shared/f0.blueprint.yaml');
    expect(flow.decisions()).toEqual([]);
  });

  it('a cancelled or failed import goes back to the report (nothing was written)', async () => {
    let fail: CommandError | null = new CommandError('cancelled', 'cancelled');
    const { calls, call } = recorder({
      import_plan: () => samplePlan(),
      import_apply: () => {
        if (fail) throw fail;
        return summary;
      },
      cancel_operation: () => true,
    });
    const flow = new ImportFlow(call);
    await flow.start(['/drop/flows']);
    const pending = flow.apply();
    expect(flow.phase).toBe('importing');
    await flow.cancel();
    expect(calls.some((c) => c.cmd === 'cancel_operation' && c.args.op === 'import')).toBe(true);
    await pending;
    expect(flow.phase).toBe('report');
    expect(flow.error?.code).toBe('cancelled');
    fail = null;
    await flow.apply();
    expect(flow.phase).toBe('done');
  });

  it('an unreadable drop shows the error', async () => {
    const { call } = recorder({
      import_plan: () => {
        throw new CommandError('invalid_argument', 'nothing to import');
      },
    });
    const flow = new ImportFlow(call);
    await flow.start(['/nowhere']);
    expect(flow.phase).toBe('error');
    expect(flow.error?.message).toBe('nothing to import');
  });

  it('lists what needs a decision first and gives invalid items their line', () => {
    const order = sortedItems(samplePlan()).map((i) => i.class);
    expect(order).toEqual(['conflict', 'conflict', 'new', 'new', 'invalid', 'refused', 'identical']);
    expect(reasonOf(planItem(4, 'invalid', { reason: 'expected a mapping', line: 3 }))).toBe(
      'line 3: expected a mapping',
    );
  });
});
