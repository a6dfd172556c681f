// Where to draw each node of a workflow picture: the YAML's positions when every node
// has one (scaled to fit), else a layered layout (longest path from the sources, in
// order of appearance within a layer). Cycles are tolerated: a node's layer is only
// pushed down by edges that do not close a cycle.
import type { GraphEdge, GraphNode } from './bindings';

export interface Placed {
  id: string;
  node_type: string;
  label: string;
  x: number;
  y: number;
}

export interface Layout {
  nodes: Placed[];
  edges: { from: Placed; to: Placed }[];
  width: number;
  height: number;
}

export const NODE_W = 148;
export const NODE_H = 44;
const GAP_X = 56;
const GAP_Y = 22;
const PAD = 16;

export function layoutGraph(nodes: GraphNode[], edges: GraphEdge[]): Layout {
  if (nodes.length === 0) return { nodes: [], edges: [], width: 0, height: 0 };
  const positioned = nodes.every((n) => n.x !== null && n.y !== null);
  const placed = positioned ? fromPositions(nodes) : layered(nodes, edges);
  const byId = new Map(placed.map((p) => [p.id, p]));
  const drawn = edges.flatMap((e) => {
    const from = byId.get(e.from);
    const to = byId.get(e.to);
    return from && to ? [{ from, to }] : [];
  });
  const width = Math.max(...placed.map((p) => p.x + NODE_W)) + PAD;
  const height = Math.max(...placed.map((p) => p.y + NODE_H)) + PAD;
  return { nodes: placed, edges: drawn, width, height };
}

function labelOf(n: GraphNode): string {
  return n.label && n.label.trim() ? n.label : n.id;
}

function fromPositions(nodes: GraphNode[]): Placed[] {
  const xs = nodes.map((n) => n.x ?? 0);
  const ys = nodes.map((n) => n.y ?? 0);
  const minX = Math.min(...xs);
  const minY = Math.min(...ys);
  // Editors use all sorts of units; keep boxes from overlapping by scaling so that
  // the closest distinct coordinates are at least a box apart.
  const sx = scaleFor(xs, NODE_W + GAP_X / 2);
  const sy = scaleFor(ys, NODE_H + GAP_Y / 2);
  return nodes.map((n) => ({
    id: n.id,
    node_type: n.node_type,
    label: labelOf(n),
    x: PAD + ((n.x ?? 0) - minX) * sx,
    y: PAD + ((n.y ?? 0) - minY) * sy,
  }));
}

function scaleFor(values: number[], minGap: number): number {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  let smallest = Infinity;
  for (let i = 1; i < sorted.length; i++)
    smallest = Math.min(smallest, (sorted[i] ?? 0) - (sorted[i - 1] ?? 0));
  if (!Number.isFinite(smallest) || smallest <= 0) return 1;
  return Math.min(Math.max(minGap / smallest, 0.05), 20);
}

function layered(nodes: GraphNode[], edges: GraphEdge[]): Placed[] {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const out = new Map<string, string[]>();
  for (const e of edges) {
    if (!index.has(e.from) || !index.has(e.to) || e.from === e.to) continue;
    const list = out.get(e.from) ?? [];
    list.push(e.to);
    out.set(e.from, list);
  }
  // Depth-first from every node in file order; back edges (to a node on the stack) are ignored.
  const layer = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  const order: string[] = [];
  const state = new Map<string, 1 | 2>();
  const visit = (id: string): void => {
    state.set(id, 1);
    for (const next of out.get(id) ?? []) if (!state.has(next)) visit(next);
    state.set(id, 2);
    order.push(id);
  };
  for (const n of nodes) if (!state.has(n.id)) visit(n.id);
  order.reverse(); // topological order of the graph without its back edges
  const pos = new Map(order.map((id, i) => [id, i]));
  for (const id of order) {
    for (const next of out.get(id) ?? []) {
      if ((pos.get(next) ?? 0) > (pos.get(id) ?? 0)) {
        layer.set(next, Math.max(layer.get(next) ?? 0, (layer.get(id) ?? 0) + 1));
      }
    }
  }
  const rows = new Map<number, number>();
  return nodes.map((n) => {
    const l = layer.get(n.id) ?? 0;
    const r = rows.get(l) ?? 0;
    rows.set(l, r + 1);
    return {
      id: n.id,
      node_type: n.node_type,
      label: labelOf(n),
      x: PAD + l * (NODE_W + GAP_X),
      y: PAD + r * (NODE_H + GAP_Y),
    };
  });
}
