/**
 * `npm run deploy`: deploys the stack with the project's pinned CDK CLI, keeping its outputs in a
 * file, then writes the stack file the command line and `npm run smoke` read. Needs credentials
 * for the target account (the AWS SDK's default chain) and a bootstrapped environment; no AWS CLI.
 *
 *   npm run deploy                                   deploy, write .deployed/stack.json
 *   npm run deploy -- --out my-stack.json -- -c modelId=amazon.nova-lite-v1:0 --require-approval never
 *
 * Everything after a second `--` goes to `cdk deploy` as it is.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { orExitWithUsage, parseCommandLine, UsageError } from '../cli/args.js';
import { CONTEXT_DEFAULTS } from './context.js';
import { writeStackFile } from './stack-file.js';

const USAGE = `usage: npm run deploy -- [--stack-name <name>] [--outputs-file <file>] [--out <file>] [-- <cdk deploy options>]

  --stack-name <name>     the stack (default ${CONTEXT_DEFAULTS.stackName}; also pass -c stackName=<name> to cdk)
  --outputs-file <file>   where cdk writes the stack outputs (default cdk-outputs.json)
  --out <file>            the stack file to write (default .deployed/stack.json)
  -- <options>            passed to cdk deploy (e.g. -c key=value, --require-approval never)
`;

/** What `npm run deploy` was asked to do. */
export interface DeployPlan {
  readonly stackName: string;
  readonly outputsFile: string;
  readonly out: string;
  /** The arguments of the CDK CLI. */
  readonly cdkArgs: readonly string[];
}

/** Reads `npm run deploy`'s command line; throws a `UsageError` for anything it does not take. */
export function deployPlanOf(argv: readonly string[]): DeployPlan | 'help' {
  const split = argv.indexOf('--');
  const own = split === -1 ? argv : argv.slice(0, split);
  const passed = split === -1 ? [] : argv.slice(split + 1);
  const { values } = parseCommandLine(own, {
    'stack-name': { type: 'string', default: CONTEXT_DEFAULTS.stackName },
    'outputs-file': { type: 'string', default: 'cdk-outputs.json' },
    out: { type: 'string', default: '.deployed/stack.json' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return 'help';
  if (passed.includes('--outputs-file') || passed.some((a) => a.startsWith('--outputs-file='))) {
    throw new UsageError('give --outputs-file before the second --, so the stack file is read from it');
  }
  return {
    stackName: values['stack-name'],
    outputsFile: values['outputs-file'],
    out: values.out,
    cdkArgs: ['deploy', values['stack-name'], '--outputs-file', values['outputs-file'], ...passed],
  };
}

function runCdk(args: readonly string[]): Promise<number> {
  const cdk = fileURLToPath(new URL('../node_modules/.bin/cdk', import.meta.url));
  return new Promise((done, fail) => {
    const child = spawn(cdk, [...args], { stdio: 'inherit' });
    child.once('error', fail);
    child.once('exit', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

async function main(argv: string[]): Promise<number> {
  const plan = orExitWithUsage(USAGE, () => deployPlanOf(argv));
  if (plan === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const code = await runCdk(plan.cdkArgs);
  if (code !== 0) {
    process.stderr.write(`cdk deploy failed (exit code ${code}); no stack file written\n`);
    return code;
  }
  const out = await writeStackFile({
    outputsFile: plan.outputsFile,
    stackName: plan.stackName,
    out: plan.out,
  });
  process.stdout.write(`wrote ${out}\ncheck it end to end: npm run smoke -- --stack ${plan.out}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
