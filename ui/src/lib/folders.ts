// The sidebar's folder tree, built from the index's flat folder list (every folder and
// ancestor holding items, with counts at any depth). The library's own top folders
// are always shown, even when empty.
import type { FolderCount } from './bindings';

export interface FolderNode {
  path: string;
  name: string;
  count: number;
  children: FolderNode[];
}

export const TOP_FOLDERS: { path: string; name: string }[] = [
  { path: 'Blueprints/personal', name: 'Personal' },
  { path: 'Blueprints/shared', name: 'Shared' },
  { path: 'Templates', name: 'Templates' },
];

export function buildTree(folders: FolderCount[]): FolderNode[] {
  const counts = new Map(folders.map((f) => [f.path, f.count]));
  const nodes = new Map<string, FolderNode>();
  const roots: FolderNode[] = TOP_FOLDERS.map((t) => {
    const node = { path: t.path, name: t.name, count: counts.get(t.path) ?? 0, children: [] };
    nodes.set(t.path, node);
    return node;
  });
  const others: FolderNode[] = [];
  for (const f of [...folders].sort((a, b) => a.path.localeCompare(b.path))) {
    if (nodes.has(f.path) || f.path === 'Blueprints') continue;
    const cut = f.path.lastIndexOf('/');
    const parentPath = cut > 0 ? f.path.slice(0, cut) : '';
    const node: FolderNode = { path: f.path, name: f.path.slice(cut + 1), count: f.count, children: [] };
    nodes.set(f.path, node);
    const parent = nodes.get(parentPath);
    if (parent) parent.children.push(node);
    else others.push(node);
  }
  return [...roots, ...others];
}

/** The folder part of a blueprint path, shown in the list (`Blueprints/` dropped). */
export function folderOf(path: string): string {
  const cut = path.lastIndexOf('/');
  const dir = cut > 0 ? path.slice(0, cut) : '';
  return dir.startsWith('Blueprints/') ? dir.slice('Blueprints/'.length) : dir;
}

export function fileNameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The folders a new or moved blueprint may go to. */
export function folderChoices(folders: FolderCount[]): string[] {
  const set = new Set(TOP_FOLDERS.map((t) => t.path));
  for (const f of folders) if (f.path !== 'Blueprints') set.add(f.path);
  return [...set].sort((a, b) => a.localeCompare(b));
}
