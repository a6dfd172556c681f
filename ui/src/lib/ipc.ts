// The one door to the shell: typed `call` over Tauri's invoke, and the library event.
// Command names, argument and result types come from the generated bindings; nothing
// here restates a Rust type by hand.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { Commands, Events, IpcError } from './bindings';

export type CommandName = keyof Commands;
export type Args<K extends CommandName> = Commands[K]['args'];
export type Result<K extends CommandName> = Commands[K]['result'];

/** Codes the UI acts on (the engine's `Error::code()` and the shell's own). */
export type ErrorCode =
  | 'not_found'
  | 'already_exists'
  | 'invalid_key'
  | 'conflict'
  | 'corrupt'
  | 'invalid_blueprint'
  | 'invalid_argument'
  | 'disk_full'
  | 'io'
  | 'no_library'
  | 'library_in_use'
  | 'internal'
  | (string & {});

export class CommandError extends Error implements IpcError {
  readonly code: ErrorCode;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'CommandError';
  }
}

export function isIpcError(e: unknown): e is IpcError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as IpcError).code === 'string' &&
    typeof (e as IpcError).message === 'string'
  );
}

/** Any rejection as a CommandError (non-IPC failures become `internal`). */
export function toCommandError(e: unknown): CommandError {
  if (e instanceof CommandError) return e;
  if (isIpcError(e)) return new CommandError(e.code, e.message);
  return new CommandError('internal', e instanceof Error ? e.message : String(e));
}

export async function call<K extends CommandName>(command: K, args: Args<K>): Promise<Result<K>> {
  try {
    return await invoke<Result<K>>(command, args as Record<string, unknown>);
  } catch (e) {
    throw toCommandError(e);
  }
}

export type EventName = keyof Events;

export function on<E extends EventName>(
  event: E,
  handler: (payload: Events[E]) => void,
): Promise<UnlistenFn> {
  return listen<Events[E]>(event, (e) => handler(e.payload));
}
