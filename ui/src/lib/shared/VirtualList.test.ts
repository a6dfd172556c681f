import { describe, expect, it } from 'vitest';
import { render } from '@testing-library/svelte';
import Harness from '../../test/VirtualListHarness.svelte';

describe('VirtualList', () => {
  it('renders only a window of a huge list', () => {
    const { container } = render(Harness, { count: 100_000 });
    const slots = container.querySelectorAll('[role="option"]');
    expect(slots.length).toBeGreaterThan(0);
    expect(slots.length).toBeLessThan(100);
    const spacer = container.querySelector('.spacer') as HTMLElement;
    expect(spacer.style.height).toBe(`${100_000 * 30}px`);
  });
});
