import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import BucketFields from './BucketFields.svelte';
import BucketFieldsHarness from '../../test/BucketFieldsHarness.svelte';

afterEach(cleanup);

describe('BucketFields', () => {
  it('binds every field both ways and names the controls by the testid prefix', async () => {
    const user = userEvent.setup();
    render(BucketFieldsHarness);
    await user.type(screen.getByLabelText(/^Endpoint\(s\)/), 'http://n1:3900');
    await user.type(screen.getByLabelText('Bucket'), 'team');
    await user.type(screen.getByLabelText('Prefix (optional)'), 'design');
    await user.type(screen.getByLabelText('Region'), 'garage');
    await user.type(screen.getByLabelText('Access key id'), 'GK1');
    await user.type(screen.getByLabelText('Secret access key'), 's3cret');
    await user.click(screen.getByLabelText('Virtual-hosted requests (AWS S3)'));
    expect(JSON.parse(screen.getByTestId('values').textContent ?? '')).toEqual({
      endpoints: 'http://n1:3900',
      bucket: 'team',
      prefix: 'design',
      region: 'garage',
      accessKeyId: 'GK1',
      secret: 's3cret',
      virtualHosted: true,
    });
    expect(screen.getByTestId('x-secret')).toHaveAttribute('type', 'password');
    // The parent clearing a value clears the field.
    await user.click(screen.getByTestId('clear-secret'));
    expect(screen.getByTestId('x-secret')).toHaveValue('');
  });

  it('shows what is wrong with the endpoints on the endpoints field', () => {
    render(BucketFields, { props: { testid: 'x', endpointsLabel: 'Endpoints', endpointsError: 'Bad one' } });
    const endpoints = screen.getByTestId('x-endpoints');
    expect(endpoints).toHaveAttribute('aria-invalid', 'true');
    expect(endpoints).toHaveAccessibleDescription('Bad one');
    expect(screen.getByTestId('x-bucket')).toHaveAttribute('aria-invalid', 'false');
  });
});
