// Import plans and summaries for the import tests.
import type { ImportItem, ImportPlanView, ImportSummary } from '../lib/bindings';

export function planItem(n: number, cls: ImportItem['class'], extra: Partial<ImportItem> = {}): ImportItem {
  return {
    n,
    source: `/drop/flows/f${n}.blueprint.yaml`,
    target: `Blueprints/personal/f${n}.blueprint.yaml`,
    class: cls,
    reason: null,
    line: null,
    existing: null,
    name: `Flow ${n}`,
    converted_from_json: false,
    size: 100,
    ...extra,
  };
}

export function samplePlan(into: string | null = null, planId = 7): ImportPlanView {
  const items = [
    planItem(0, 'new'),
    planItem(1, 'identical', { existing: 'Blueprints/personal/f1.blueprint.yaml' }),
    planItem(2, 'conflict', { reason: 'the target path holds different content' }),
    planItem(3, 'conflict', { reason: 'the target path holds different content' }),
    planItem(4, 'invalid', { reason: 'expected a mapping', line: 3 }),
    planItem(5, 'refused', { target: null, reason: 'entry escapes the archive (..)' }),
    planItem(6, 'new'),
  ];
  if (into) for (const i of items) if (i.target) i.target = i.target.replace('Blueprints/personal', into);
  return {
    plan_id: planId,
    into,
    sources: ['/drop/flows'],
    items,
    errors: [],
    ignored: ['/drop/flows/readme.txt'],
    counts: { new: 2, identical: 1, conflict: 2, invalid: 1, refused: 1 },
  };
}

export const summary: ImportSummary = {
  imported: ['Blueprints/personal/f0.blueprint.yaml'],
  identical: ['Blueprints/personal/f1.blueprint.yaml'],
  skipped: ['Blueprints/personal/f2.blueprint.yaml'],
  errors: [{ source: '/drop/flows/f4.blueprint.yaml', error: 'line 3: expected a mapping' }],
  renamed: [],
  overwritten: [],
  millis: 4,
};
