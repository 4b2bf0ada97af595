import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const read = (file: string) => readFileSync(join(__dirname, '..', '..', file), 'utf8');

/** The variables of the README's configuration table (first column). */
function documentedVariables(): string[] {
  const section = read('README.md').split('\n## Configuration')[1].split('\n## ')[0];
  return [...section.matchAll(/^\| `([A-Z][A-Z0-9_]*)`/gm)].map((match) => match[1]);
}

describe('.env.example', () => {
  it('lists every variable of the README configuration table, and no other', () => {
    const listed = [...read('.env.example').matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect(documentedVariables().length).toBeGreaterThan(10);
    expect([...listed].sort()).toEqual([...documentedVariables()].sort());
  });
});
