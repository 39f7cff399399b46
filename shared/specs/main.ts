/**
 * `npm run specs`: writes docs/openapi.json and docs/asyncapi.json from the zod contracts.
 * `npm run specs -- --check` only tells whether they are current (exit 1 when not).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REGENERATE_COMMAND, specFiles } from './index.js';

const root = join(import.meta.dirname, '..', '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const [path, text] of Object.entries(specFiles())) {
  const file = join(root, path);
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === text) {
    process.stdout.write(`${path}: current\n`);
  } else if (check) {
    stale++;
    process.stdout.write(`${path}: out of date (run \`${REGENERATE_COMMAND}\`)\n`);
  } else {
    writeFileSync(file, text);
    process.stdout.write(`${path}: written\n`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
