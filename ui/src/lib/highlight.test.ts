import { describe, expect, it } from 'vitest';
import { focusFirstMark, markWords, splitMarks } from './highlight';

describe('splitMarks', () => {
  it('splits the engine snippet into marked and plain text', () => {
    expect(splitMarks('send the <mark>daily</mark> <mark>sales</mark> digest')).toEqual([
      { text: 'send the ', mark: false },
      { text: 'daily', mark: true },
      { text: ' ', mark: false },
      { text: 'sales', mark: true },
      { text: ' digest', mark: false },
    ]);
  });

  it('keeps any other markup as plain text', () => {
    const segs = splitMarks('<img src=x onerror=alert(1)> and <mark><b>x</b></mark>');
    expect(segs).toEqual([
      { text: '<img src=x onerror=alert(1)> and ', mark: false },
      { text: '<b>x</b>', mark: true },
    ]);
  });

  it('tolerates an unclosed mark and empty input', () => {
    expect(splitMarks('a <mark>b')).toEqual([
      { text: 'a ', mark: false },
      { text: 'b', mark: true },
    ]);
    expect(splitMarks('')).toEqual([]);
  });
});

describe('markWords', () => {
  it('marks every occurrence of each word, case-insensitively', () => {
    expect(markWords('Sales digest for sales', 'SALES')).toEqual([
      { text: 'Sales', mark: true },
      { text: ' digest for ', mark: false },
      { text: 'sales', mark: true },
    ]);
  });
  it('returns the text unmarked without a query', () => {
    expect(markWords('abc', '  ')).toEqual([{ text: 'abc', mark: false }]);
  });
});

describe('focusFirstMark', () => {
  it('cuts a long preamble at a word boundary', () => {
    const segs = focusFirstMark(
      splitMarks('one two three four five six seven eight nine ten <mark>hit</mark> end'),
      20,
    );
    expect(segs[0]!.text.startsWith('…')).toBe(true);
    expect(segs[0]!.text.length).toBeLessThanOrEqual(21);
    expect(segs[1]).toEqual({ text: 'hit', mark: true });
  });
  it('leaves short or unmarked text alone', () => {
    const segs = splitMarks('a <mark>b</mark>');
    expect(focusFirstMark(segs)).toBe(segs);
    expect(focusFirstMark([{ text: 'x'.repeat(100), mark: false }])).toHaveLength(1);
  });
});
