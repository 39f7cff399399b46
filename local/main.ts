/**
 * `npm start`: runs the whole system on loopback stand-ins until Ctrl-C.
 *
 *   npm start                  keep state in .local/, submit a few demo items
 *   npm start -- --fresh       start empty
 *   npm start -- --no-demo     submit nothing
 *   npm start -- --data-dir D  keep state in D
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { orExitWithUsage, parseCommandLine } from '../cli/args.js';

const USAGE = `usage: npm start -- [--fresh] [--no-demo] [--data-dir DIR]

  --fresh          start empty (deletes the data folder first)
  --no-demo        submit no demo items
  --data-dir DIR   keep state, the stack file and the pid file in DIR (default: .local)
`;
const { values } = orExitWithUsage(USAGE, () =>
  parseCommandLine(process.argv.slice(2), {
    fresh: { type: 'boolean', default: false },
    'no-demo': { type: 'boolean', default: false },
    'data-dir': { type: 'string', default: '.local' },
    help: { type: 'boolean', short: 'h', default: false },
  }),
);
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
// Loaded once the command line is known good, so help and usage errors answer at once.
const { useLocalProcessEnvironment } = await import('./process-env.js');
useLocalProcessEnvironment();
const { standInOptionsFromEnv } = await import('./bedrock/index.js');
const { runDemo } = await import('./demo.js');
const { LOCAL_STATS_PATH, startLocalStack } = await import('./stack.js');

const dataDir = resolve(values['data-dir']);
const pidFile = join(dataDir, 'stack.pid');
claimPidFile(pidFile, values.fresh);

const started = Date.now();
const stack = await startLocalStack({
  dataDir,
  fresh: values.fresh,
  bedrock: standInOptionsFromEnv(process.env),
}).catch((err: unknown) => {
  rmSync(pidFile, { force: true });
  throw err;
});
writeFileSync(pidFile, String(process.pid));

const { info } = stack;
process.stdout.write(
  [
    `local stack ready in ${Date.now() - started} ms (state in ${dataDir})`,
    `  dashboard      ${info.dashboard.url}#token=${info.token}`,
    `  HTTP API       ${info.http.url}/items   (Authorization: Bearer <token from ${stack.stackFile}>)`,
    `  WebSocket      ${info.websocket.url}?token=<token>`,
    `  Kinesis        ${info.kinesis.endpoint}  input stream "${info.kinesis.inputStream}"`,
    `  DynamoDB       ${info.dynamodb.endpoint}`,
    `  Bedrock        ${info.bedrock.endpoint}  (stand-in; control: ${info.bedrock.endpoint}/_control/faults)`,
    `  dead letters   ${info.deadLetters.queueUrl}`,
    `  counters       ${info.http.url}${LOCAL_STATS_PATH}`,
    `  stack file     ${stack.stackFile}`,
    '',
    '  submit:  npm run cli -- submit "Write a haiku about streams"',
    '  watch:   npm run cli -- watch --all',
    '',
  ].join('\n'),
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\n${signal}: stopping...\n`);
  const timer = setTimeout(() => {
    process.stderr.write('shutdown took longer than 5 s; exiting\n');
    process.exit(1);
  }, 5_000);
  // Generations in flight are abandoned, not awaited: their work items were not checkpointed, so
  // the next start delivers them again and the producer takes over their expired claims.
  await stack.stop({ abandonInFlight: true });
  clearTimeout(timer);
  rmSync(pidFile, { force: true });
  process.stdout.write('stopped\n');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

if (!values['no-demo']) {
  await runDemo(stack, (line) => process.stdout.write(`${line}\n`)).catch((err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  });
}

/**
 * Refuses to start beside a running stack on the same data folder, and clears the pid file a
 * crashed run left behind.
 */
function claimPidFile(file: string, fresh: boolean): void {
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
    process.stderr.write(`a local stack is already running on ${dataDir} (pid ${pid}); stop it first\n`);
    process.exit(1);
  }
  if (!fresh) process.stdout.write(`removing a stale pid file left by a stopped run (pid ${pid})\n`);
  rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
