// Starting points for a new blueprint, and turning a name into a file name.
export interface Template {
  id: string;
  title: string;
  description: string;
  yaml: string;
}

export const BUILTIN_TEMPLATES: Template[] = [
  {
    id: 'builtin:blank',
    title: 'Blank',
    description: 'Just a name and a description.',
    yaml: 'name: Untitled\ndescription: ""\ntags: []\nnodes: []\nedges: []\n',
  },
  {
    id: 'builtin:pipeline',
    title: 'Fetch → transform → send',
    description: 'A three-step pipeline to adapt.',
    yaml: [
      'name: Untitled',
      'description: Fetch data, transform it, send the result',
      'version: "1.0"',
      'tags: []',
      'nodes:',
      '  - id: fetch',
      '    type: http.request',
      '    parameters:',
      '      url: https://example.com/api',
      '  - id: transform',
      '    type: code.script',
      '    parameters:',
      '      language: javascript',
      '  - id: send',
      '    type: slack.post',
      '    parameters:',
      '      channel: "#general"',
      'edges:',
      '  - {from: fetch, to: transform}',
      '  - {from: transform, to: send}',
      '',
    ].join('\n'),
  },
];

/** Set the top-level `name:` of a blueprint's YAML (added at the top when missing). */
export function withName(yaml: string, name: string): string {
  const line = `name: ${JSON.stringify(name)}`;
  const re = /^name:.*$/m;
  return re.test(yaml) ? yaml.replace(re, line) : `${line}\n${yaml}`;
}

/** A file name for a blueprint name: lowercase words joined by dashes. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80);
  return slug || 'untitled';
}
