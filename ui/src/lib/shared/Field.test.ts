import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen } from '@testing-library/svelte';
import { createRawSnippet } from 'svelte';
import Field from './Field.svelte';
import type { FieldControl } from './Field.svelte';

afterEach(cleanup);

/** The control a caller would write: an input with the wiring the Field hands it. */
const input = createRawSnippet((control: () => FieldControl) => ({
  render: () => {
    const c = control();
    const described = c['aria-describedby'] ? ` aria-describedby="${c['aria-describedby']}"` : '';
    return `<input id="${c.id}" aria-invalid="${c['aria-invalid']}"${described} />`;
  },
}));

describe('Field', () => {
  it('wires the label to the control and describes it with the hint', () => {
    render(Field, { props: { label: 'Bucket', hint: 'An empty one', children: input } });
    const box = screen.getByLabelText('Bucket');
    expect(box.tagName).toBe('INPUT');
    expect(box).toHaveAttribute('aria-invalid', 'false');
    expect(box).toHaveAccessibleDescription('An empty one');
  });

  it('shows the error, marks the control invalid and describes it with the error', () => {
    render(Field, {
      props: { label: 'Endpoint', error: 'Not an address', describedby: 'elsewhere', children: input },
    });
    const box = screen.getByLabelText('Endpoint');
    expect(screen.getByText('Not an address')).toBeInTheDocument();
    expect(box).toHaveAttribute('aria-invalid', 'true');
    const ids = (box.getAttribute('aria-describedby') ?? '').split(' ');
    expect(ids[0]).toBe('elsewhere');
    expect(document.getElementById(ids[1] ?? '')).toHaveTextContent('Not an address');
  });

  it('keeps a given id and can be marked invalid without an error of its own', () => {
    render(Field, { props: { label: 'Name', id: 'the-name', invalid: true, children: input } });
    const box = screen.getByLabelText('Name');
    expect(box.id).toBe('the-name');
    expect(box).toHaveAttribute('aria-invalid', 'true');
    expect(box).not.toHaveAttribute('aria-describedby');
  });
});
