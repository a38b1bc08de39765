// docs/tutorial.md shows the page's own code: every ```ts block in it must
// appear verbatim in web/src, so the tutorial cannot drift from what the
// browser test runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

test('every TypeScript block of docs/tutorial.md is code of web/src', () => {
  const tutorial = readFileSync(path.join(ROOT, 'docs', 'tutorial.md'), 'utf8');
  const src = path.join(ROOT, 'web', 'src');
  const code = readdirSync(src)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(src, f), 'utf8'))
    .join('\n');
  const blocks = [...tutorial.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 10, `only ${blocks.length} code blocks`);
  for (const block of blocks) {
    assert.ok(code.includes(block), `not in web/src:\n${block}`);
  }
});
