/**
 * The command line: `npm run cli -- <command> [args]`, or `model-streams <command> [args]` once
 * installed (`bin/model-streams.mjs`). Each command lives in `commands/<name>.ts` and exports
 * `run(args: string[]): Promise<number>` (the exit code) and a one-line `summary`.
 *
 * Exit codes: 0 done, 1 the operation failed, 2 a bad command line (the usage is printed).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { USAGE_EXIT_CODE } from './args.js';

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

/** The package's version, from its package.json. */
function version(): string {
  const pkg = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

async function usage(): Promise<string> {
  const width = Math.max(...available.map((name) => name.length)) + 2;
  const lines = await Promise.all(
    available.map(async (name) => `  ${name.padEnd(width)} ${(await load(name)).summary}`),
  );
  return [
    'usage: npm run cli -- <command> [args]      (installed: model-streams <command> [args])',
    '       npm run cli -- <command> --help      one command in detail',
    '       npm run cli -- --version',
    '',
    'commands:',
    ...lines,
    '',
    'Every command takes --stack <file> (default .local/stack.json, or STREAMS_STACK_FILE).',
    'Exit codes: 0 done, 1 the operation failed, 2 a bad command line.',
    '',
  ].join('\n');
}

const [name, ...args] = process.argv.slice(2);
if (name === '--help' || name === '-h' || name === 'help') {
  process.stdout.write(await usage());
  process.exit(0);
}
if (name === '--version' || name === '-V') {
  process.stdout.write(`${version()}\n`);
  process.exit(0);
}
if (!name || !available.includes(name)) {
  const problem = !name
    ? 'give a command'
    : name.startsWith('-')
      ? `unknown option: ${name}`
      : `unknown command: ${name}`;
  process.stderr.write(`${problem}\n\n${await usage()}`);
  process.exit(USAGE_EXIT_CODE);
}
process.exitCode = await (await load(name)).run(args);
