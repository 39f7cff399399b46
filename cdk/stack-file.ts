#!/usr/bin/env node
/**
 * Turns the outputs of a deployed stack into the stack file the command line reads:
 *
 *   npx cdk deploy --outputs-file cdk-outputs.json
 *   npx tsx cdk/stack-file.ts cdk-outputs.json --out .deployed/stack.json
 *   npm run cli -- submit "Write a haiku" --stack .deployed/stack.json
 *
 * The token is minted here (HS256, like every viewer token) with the signing key read from the
 * stack's secret through the AWS CLI, or from AUTH_TOKEN_SECRET when that is set.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Target } from '../cli/target.js';
import { issueToken } from '../shared/auth.js';
import { CONTEXT_DEFAULTS } from './context.js';
import { OUTPUTS } from './stack.js';

/** What a deployed stack's outputs give, before a token is minted. */
export interface DeployedStack {
  readonly target: Omit<Target, 'token' | 'credentials'>;
  readonly tokenSecretArn: string;
}

/**
 * Reads one stack's outputs from a `cdk deploy --outputs-file` file (stack name → output name → value).
 * Throws naming the stack or output that is missing.
 */
export function deployedStackOf(
  outputsFile: Readonly<Record<string, Readonly<Record<string, string>> | undefined>>,
  stackName: string = CONTEXT_DEFAULTS.stackName,
): DeployedStack {
  const outputs = outputsFile[stackName];
  if (!outputs) {
    throw new Error(
      `no outputs for stack ${JSON.stringify(stackName)} in the outputs file; it has ${JSON.stringify(Object.keys(outputsFile))}`,
    );
  }
  const output = (name: string) => {
    const value = outputs[name];
    if (!value)
      throw new Error(`stack ${stackName} has no output ${JSON.stringify(name)}: redeploy the current app`);
    return value;
  };
  return {
    target: {
      region: output(OUTPUTS.region),
      kinesis: { inputStream: output(OUTPUTS.inputStream) },
      http: { url: output(OUTPUTS.httpUrl) },
      websocket: { url: output(OUTPUTS.webSocketUrl) },
    },
    tokenSecretArn: output(OUTPUTS.tokenSecretArn),
  };
}

/** The token signing key: AUTH_TOKEN_SECRET, or the stack's secret read with the AWS CLI. */
function signingKey(stack: DeployedStack): string {
  const fromEnv = process.env.AUTH_TOKEN_SECRET;
  if (fromEnv) return fromEnv;
  try {
    return execFileSync(
      'aws',
      [
        'secretsmanager',
        'get-secret-value',
        '--secret-id',
        stack.tokenSecretArn,
        '--region',
        stack.target.region,
        '--query',
        'SecretString',
        '--output',
        'text',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    ).trim();
  } catch (err) {
    throw new Error(
      `could not read the token key from ${stack.tokenSecretArn} with the AWS CLI (${(err as Error).message}); ` +
        'set AUTH_TOKEN_SECRET to its value instead',
    );
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'stack-name': { type: 'string', default: CONTEXT_DEFAULTS.stackName },
      out: { type: 'string', default: '.deployed/stack.json' },
      subject: { type: 'string', default: 'cli' },
      'token-ttl-hours': { type: 'string', default: '24' },
    },
  });
  const [outputsPath] = positionals;
  if (!outputsPath || positionals.length > 1) {
    throw new Error(
      'usage: npx tsx cdk/stack-file.ts <cdk-outputs.json> [--stack-name <name>] [--out <file>] [--subject <name>] [--token-ttl-hours <n>]',
    );
  }
  const ttlHours = Number(values['token-ttl-hours']);
  if (!Number.isInteger(ttlHours) || ttlHours < 1 || ttlHours > 24 * 365) {
    throw new Error(`--token-ttl-hours must be an integer from 1 to 8760, got ${values['token-ttl-hours']}`);
  }
  const stack = deployedStackOf(JSON.parse(readFileSync(resolve(outputsPath), 'utf8')), values['stack-name']);
  const token = await issueToken(signingKey(stack), values.subject, ttlHours * 3600);
  const file: Target = { ...stack.target, token };
  const out = resolve(values.out);
  mkdirSync(dirname(out), { recursive: true });
  // The token grants access to every item: readable by its owner only.
  writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  process.stdout.write(`wrote ${out} (token for "${values.subject}", valid ${ttlHours} h)\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
