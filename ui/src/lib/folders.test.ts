import { describe, expect, it } from 'vitest';
import { buildTree, folderOf } from './folders';
import { slugify, withName } from './templates';

describe('buildTree', () => {
  it('nests folders under the library top folders, which always show', () => {
    const tree = buildTree([
      { path: 'Blueprints', count: 5 },
      { path: 'Blueprints/personal', count: 5 },
      { path: 'Blueprints/personal/sales', count: 3 },
      { path: 'Blueprints/personal/sales/eu', count: 1 },
      { path: 'Imports', count: 2 },
    ]);
    expect(tree.map((n) => n.name)).toEqual(['Personal', 'Shared', 'Templates', 'Imports']);
    const personal = tree[0]!;
    expect(personal.count).toBe(5);
    expect(personal.children[0]!.name).toBe('sales');
    expect(personal.children[0]!.children[0]!.path).toBe('Blueprints/personal/sales/eu');
    expect(tree[1]!.count).toBe(0);
  });

  it('shows folders without the Blueprints/ prefix', () => {
    expect(folderOf('Blueprints/personal/sales/x.blueprint.yaml')).toBe('personal/sales');
    expect(folderOf('Templates/x.blueprint.yaml')).toBe('Templates');
    expect(folderOf('x.blueprint.yaml')).toBe('');
  });
});

describe('templates', () => {
  it('sets the top-level name, quoting it', () => {
    expect(withName('name: Untitled\nnodes: []\n', 'Say "hi": now')).toBe(
      'name: "Say \\"hi\\": now"\nnodes: []\n',
    );
    expect(withName('nodes: []\n', 'X')).toBe('name: "X"\nnodes: []\n');
    expect(withName('nodes:\n  - id: a\n    name: inner\n', 'X').startsWith('name: "X"\n')).toBe(true);
  });
  it('makes file names from names', () => {
    expect(slugify('Daily Sales Digest (copy)')).toBe('daily-sales-digest-copy');
    expect(slugify('Ünïcödé')).toBe('unicode');
    expect(slugify('!!!')).toBe('untitled');
  });
});
