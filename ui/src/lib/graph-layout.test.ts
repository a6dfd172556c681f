import { describe, expect, it } from 'vitest';
import type { GraphNode } from './bindings';
import { layoutGraph, NODE_W } from './graph-layout';

const node = (id: string, x: number | null = null, y: number | null = null): GraphNode => ({
  id,
  node_type: 't',
  label: null,
  x,
  y,
});

describe('layoutGraph', () => {
  it('puts each node one layer after its predecessors', () => {
    const l = layoutGraph(
      [node('a'), node('b'), node('c'), node('d')],
      [
        { from: 'a', to: 'b' },
        { from: 'b', to: 'c' },
        { from: 'a', to: 'c' },
        { from: 'a', to: 'd' },
      ],
    );
    const x = Object.fromEntries(l.nodes.map((n) => [n.id, n.x]));
    expect(x.a).toBeLessThan(x.b as number);
    expect(x.b).toBeLessThan(x.c as number);
    expect(x.d).toBe(x.b);
    expect(l.edges).toHaveLength(4);
  });

  it('survives cycles and self loops', () => {
    const l = layoutGraph(
      [node('a'), node('b')],
      [
        { from: 'a', to: 'b' },
        { from: 'b', to: 'a' },
        { from: 'a', to: 'a' },
      ],
    );
    expect(l.nodes).toHaveLength(2);
    expect(Number.isFinite(l.width)).toBe(true);
  });

  it('uses the YAML positions when every node has one, without overlaps', () => {
    const l = layoutGraph([node('a', 0, 0), node('b', 10, 0)], [{ from: 'a', to: 'b' }]);
    const [a, b] = l.nodes;
    expect(b!.x - a!.x).toBeGreaterThanOrEqual(NODE_W);
    expect(a!.y).toBe(b!.y);
  });

  it('draws nothing for no nodes', () => {
    expect(layoutGraph([], [])).toEqual({ nodes: [], edges: [], width: 0, height: 0 });
  });
});
