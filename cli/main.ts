#!/usr/bin/env node
/**
 * The command line: `npm run cli -- <command> [args]`. Each command lives in `commands/<name>.ts`
 * and exports `run(args: string[]): Promise<number>` (the exit code) and a one-line `summary`.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(join(here, 'commands'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

async function load(name: string): Promise<Command> {
  return (await import(`./commands/${name}.js`)) as Command;
}

async function usage(): Promise<string> {
  const lines = await Promise.all(
    available.map(async (name) => `  ${name.padEnd(8)} ${(await load(name)).summary}`),
  );
  return `usage: npm run cli -- <command> [args]\n\ncommands:\n${lines.join('\n')}\n`;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || !available.includes(name)) {
  process.stderr.write(
    (name && !name.startsWith('-') ? `unknown command: ${name}\n\n` : '') + (await usage()),
  );
  process.exit(name === '--help' || name === '-h' ? 0 : 2);
}
process.exitCode = await (await load(name)).run(args);
