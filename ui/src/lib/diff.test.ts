import { describe, expect, it } from 'vitest';
import { diffLines, diffStats, type DiffLine } from './diff';

/** Applying a diff's `same` + `add` lines must give `b`; `same` + `del` must give `a`. */
function sides(d: DiffLine[]): { a: string[]; b: string[] } {
  return {
    a: d.filter((l) => l.kind !== 'add').map((l) => l.text),
    b: d.filter((l) => l.kind !== 'del').map((l) => l.text),
  };
}

describe('diffLines', () => {
  it('marks one changed line in the middle of a file', () => {
    const a = 'name: A\nnodes:\n  - id: x\n    type: http\n';
    const b = 'name: A\nnodes:\n  - id: x\n    type: slack\n';
    const d = diffLines(a, b);
    expect(d.filter((l) => l.kind !== 'same')).toEqual([
      { kind: 'del', text: '    type: http' },
      { kind: 'add', text: '    type: slack' },
    ]);
    expect(diffStats(d)).toEqual({ added: 1, removed: 1 });
  });

  it('finds the minimal edit for insertions and deletions', () => {
    const d = diffLines('a\nb\nc\nd\n', 'a\nc\nd\ne\n');
    expect(diffStats(d)).toEqual({ added: 1, removed: 1 });
    expect(sides(d)).toEqual({ a: ['a', 'b', 'c', 'd'], b: ['a', 'c', 'd', 'e'] });
  });

  it('reproduces both sides for arbitrary texts', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const gen = (): string[] => Array.from({ length: rand(12) }, () => 'abcd'.charAt(rand(4)));
      const a = gen();
      const b = gen();
      const d = diffLines(a.join('\n'), b.join('\n'));
      expect(sides(d)).toEqual({ a, b });
    }
  });

  it('handles empty sides and identical texts', () => {
    expect(diffLines('', 'x\n')).toEqual([{ kind: 'add', text: 'x' }]);
    expect(diffLines('x\n', '')).toEqual([{ kind: 'del', text: 'x' }]);
    expect(diffStats(diffLines('same\n', 'same\n'))).toEqual({ added: 0, removed: 0 });
  });
});
