// Backend data as server state: a small cache of command results keyed by command and
// arguments. Queries re-run when their arguments change (a superseded request's answer
// is ignored) and when the cache is invalidated (on every `library-changed` event).
import { call, toCommandError, type Args, type CommandError, type CommandName, type Result } from './ipc';

export type Caller = <K extends CommandName>(command: K, args: Args<K>) => Promise<Result<K>>;

export function queryKey(command: string, args: unknown): string {
  return `${command} ${JSON.stringify(args)}`;
}

export class QueryClient {
  /** Bumped by `invalidate`: every live query depends on it. */
  generation = $state(0);
  // Plain maps on purpose: reactivity comes from `generation`, not from the cache.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #cache = new Map<string, { data: unknown; generation: number }>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #inflight = new Map<string, Promise<unknown>>();
  readonly #call: Caller;

  constructor(caller: Caller = call) {
    this.#call = caller;
  }

  /** The cached result, however old. */
  peek<K extends CommandName>(command: K, args: Args<K>): Result<K> | undefined {
    return this.#cache.get(queryKey(command, args))?.data as Result<K> | undefined;
  }

  /** The result: from the cache while it is current, else from the shell (shared by callers). */
  fetch<K extends CommandName>(command: K, args: Args<K>): Promise<Result<K>> {
    const key = queryKey(command, args);
    const generation = this.generation;
    const hit = this.#cache.get(key);
    if (hit && hit.generation === generation) return Promise.resolve(hit.data as Result<K>);
    const pending = this.#inflight.get(key);
    if (pending) return pending as Promise<Result<K>>;
    const p = this.#call(command, args)
      .then((data) => {
        if (generation === this.generation) this.#cache.set(key, { data, generation });
        return data;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  /** Everything may have changed: live queries refetch (showing the old data meanwhile). */
  invalidate(): void {
    this.#inflight.clear();
    this.generation += 1;
  }

  /** Run a command that changes the library (the shell's event then invalidates). */
  mutate<K extends CommandName>(command: K, args: Args<K>): Promise<Result<K>> {
    return this.#call(command, args);
  }
}

export interface QueryState<T> {
  readonly data: T | undefined;
  readonly error: CommandError | undefined;
  readonly loading: boolean;
}

/**
 * A live query for use in a component's setup: re-runs when `args()` (or the client's
 * generation) changes; `args()` returning null pauses it. Only the latest request's
 * answer is applied.
 */
export function createQuery<K extends CommandName>(
  client: QueryClient,
  command: K,
  args: () => Args<K> | null,
): QueryState<Result<K>> {
  const state = $state<{ data: Result<K> | undefined; error: CommandError | undefined; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: false,
  });
  $effect(() => {
    const a = args();
    void client.generation;
    if (a === null) {
      state.loading = false;
      return;
    }
    let current = true;
    const cached = client.peek(command, a);
    if (cached !== undefined) state.data = cached;
    state.loading = true;
    client.fetch(command, a).then(
      (data) => {
        if (!current) return;
        state.data = data;
        state.error = undefined;
        state.loading = false;
      },
      (e: unknown) => {
        if (!current) return;
        state.error = toCommandError(e);
        state.loading = false;
      },
    );
    return () => {
      current = false;
    };
  });
  return state;
}
