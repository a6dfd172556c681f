// Import and backup flows as UI state: the dry-run report and the user's choices on it,
// progress of the shell's long operations, and what to send back. The components in
// lib/domain render these; the logic lives here so it is tested without a window.
import { on, toCommandError, type CommandError } from './ipc';
import type { Caller } from './query.svelte';
import type {
  ConflictChoice,
  ImportItem,
  ImportPlanView,
  ImportSummary,
  ItemDecision,
  Operation,
  OperationProgress,
} from './bindings';

/** What the report dialog offers for one item: conflicts choose, new items may be left out. */
export type ItemChoice = ConflictChoice | 'import';

export type ImportPhase = 'idle' | 'checking' | 'report' | 'importing' | 'done' | 'error';

/** The latest progress of each running operation, from `operation-progress` events. */
export class ProgressBoard {
  current = $state<Partial<Record<Operation, OperationProgress>>>({});

  update(p: OperationProgress): void {
    this.current = { ...this.current, [p.op]: p };
  }

  clear(op: Operation): void {
    const next = { ...this.current };
    delete next[op];
    this.current = next;
  }

  #listeners = 0;
  #unlisten: Promise<() => void> | null = null;

  /** Listen to the shell (shared by every user of the board); resolves to the unlisten function. */
  listen(): Promise<() => void> {
    this.#listeners += 1;
    this.#unlisten ??= on('operation-progress', (p) => this.update(p));
    const shared = this.#unlisten;
    let done = false;
    return shared.then(() => () => {
      if (done) return;
      done = true;
      this.#listeners -= 1;
      if (this.#listeners === 0 && this.#unlisten === shared) {
        this.#unlisten = null;
        void shared.then(unlistenQuietly);
      }
    });
  }
}

/** 0..1, or null while the total is unknown. */
export function fraction(p: OperationProgress | undefined): number | null {
  if (!p || p.total <= 0) return null;
  return Math.min(1, p.done / p.total);
}

export class ImportFlow {
  phase = $state<ImportPhase>('idle');
  sources = $state<string[]>([]);
  plan = $state<ImportPlanView | null>(null);
  /** The target folder chosen in the dialog (null: the default, or a bundle's own paths). */
  into = $state<string | null>(null);
  /** The "for all" choice for conflicts. */
  forAll = $state<ConflictChoice>('skip');
  /** Per-item choices that differ from the default, by item number. */
  choices = $state<Record<number, ItemChoice>>({});
  summary = $state<ImportSummary | null>(null);
  error = $state<CommandError | null>(null);
  readonly #call: Caller;
  #run = 0;

  constructor(call: Caller) {
    this.#call = call;
  }

  get open(): boolean {
    return this.phase !== 'idle';
  }

  /** The dry run of `paths` (what a drop or the Import… button gives). */
  async start(paths: string[]): Promise<void> {
    const sources = paths.filter((p) => p.trim() !== '');
    if (sources.length === 0) return;
    this.sources = sources;
    this.into = null;
    this.forAll = 'skip';
    this.choices = {};
    await this.#check();
  }

  /** Choose another target folder: the report is made again (targets change). */
  async setInto(folder: string | null): Promise<void> {
    this.into = folder && folder.trim() !== '' ? folder.trim() : null;
    this.choices = {};
    await this.#check();
  }

  async #check(): Promise<void> {
    const run = ++this.#run;
    this.phase = 'checking';
    this.error = null;
    this.summary = null;
    try {
      const plan = await this.#call('import_plan', { sources: this.sources, into: this.into });
      if (run !== this.#run) return;
      this.plan = plan;
      this.phase = 'report';
    } catch (e) {
      if (run !== this.#run) return;
      this.error = toCommandError(e);
      this.phase = this.plan && this.error.code === 'cancelled' ? 'report' : 'error';
      if (this.error.code === 'cancelled' && !this.plan) this.close();
    }
  }

  /** The effective choice for an item (null: nothing to choose, e.g. identical or invalid). */
  choiceOf(item: ImportItem): ItemChoice | null {
    if (item.class === 'conflict') {
      const c = this.choices[item.n];
      return c && c !== 'import' ? c : this.forAll;
    }
    if (item.class === 'new') return this.choices[item.n] === 'skip' ? 'skip' : 'import';
    return null;
  }

  choose(item: ImportItem, choice: ItemChoice): void {
    this.choices = { ...this.choices, [item.n]: choice };
  }

  /** Choose for every conflict at once (per-item choices on conflicts are reset). */
  chooseAll(choice: ConflictChoice): void {
    this.forAll = choice;
    const kept: Record<number, ItemChoice> = {};
    for (const item of this.plan?.items ?? []) {
      const c = this.choices[item.n];
      if (item.class !== 'conflict' && c !== undefined) kept[item.n] = c;
    }
    this.choices = kept;
  }

  /** How many items the import would write with the current choices. */
  get toWrite(): number {
    return (this.plan?.items ?? []).filter((i) => {
      const c = this.choiceOf(i);
      return c === 'import' || c === 'rename' || c === 'overwrite';
    }).length;
  }

  /** The per-item decisions to send (only where they differ from the default). */
  decisions(): ItemDecision[] {
    const out: ItemDecision[] = [];
    for (const item of this.plan?.items ?? []) {
      const c = this.choiceOf(item);
      if (item.class === 'new' && c === 'skip') out.push({ n: item.n, choice: 'skip' });
      if (item.class === 'conflict' && c !== null && c !== 'import' && c !== this.forAll)
        out.push({ n: item.n, choice: c });
    }
    return out;
  }

  async apply(): Promise<ImportSummary | null> {
    const plan = this.plan;
    if (!plan || this.phase !== 'report') return null;
    this.phase = 'importing';
    this.error = null;
    try {
      const summary = await this.#call('import_apply', {
        plan_id: plan.plan_id,
        on_conflict: this.forAll,
        decisions: this.decisions(),
      });
      this.summary = summary;
      this.phase = 'done';
      return summary;
    } catch (e) {
      this.error = toCommandError(e);
      // A cancel or a failure wrote nothing: back to the report to try again.
      this.phase = 'report';
      return null;
    }
  }

  async cancel(): Promise<void> {
    if (this.phase === 'checking' || this.phase === 'importing') {
      await this.#call('cancel_operation', { op: 'import' }).catch(() => false);
    } else {
      this.close();
    }
  }

  close(): void {
    this.#run++;
    this.phase = 'idle';
    this.plan = null;
    this.summary = null;
    this.error = null;
    this.choices = {};
  }
}

/** Labels for the classes, as the report shows them. */
export const CLASS_LABEL: Record<ImportItem['class'], string> = {
  new: 'New',
  identical: 'Identical',
  conflict: 'Conflict',
  invalid: 'Invalid',
  refused: 'Refused',
};

/** The order the report lists classes in: what needs a decision first. */
export const CLASS_ORDER: ImportItem['class'][] = ['conflict', 'new', 'invalid', 'refused', 'identical'];

export function sortedItems(plan: ImportPlanView): ImportItem[] {
  return [...plan.items].sort(
    (a, b) => CLASS_ORDER.indexOf(a.class) - CLASS_ORDER.indexOf(b.class) || a.n - b.n,
  );
}

/** The reason line of an item: "line 4: …" for invalid ones. */
export function reasonOf(item: ImportItem): string {
  const r = item.reason ?? '';
  if (item.line != null && !r.startsWith('line ')) return `line ${item.line}: ${r}`;
  return r;
}

/** Stop listening; a shell that is already gone (window closing, test teardown) is fine. */
export function unlistenQuietly(unlisten: () => unknown): void {
  try {
    void Promise.resolve(unlisten()).catch(() => {});
  } catch {
    /* already gone */
  }
}
