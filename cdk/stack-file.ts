#!/usr/bin/env node
/**
 * Turns the outputs of a deployed stack into the stack file the command line reads (`npm run
 * deploy` does this after `cdk deploy`):
 *
 *   npx cdk deploy --outputs-file cdk-outputs.json
 *   npx tsx cdk/stack-file.ts cdk-outputs.json --out .deployed/stack.json
 *   npm run cli -- submit "Write a haiku" --stack .deployed/stack.json
 *
 * The token is minted here (HS256: an admin token for every tenant, 12 h by default) with the
 * signing key read from the stack's secret with the AWS SDK (the default credential chain), or from
 * AUTH_TOKEN_SECRET when that is set. A stack configured for OIDC accepts only its identity
 * provider's tokens: put one in the file instead.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { orExitWithUsage, parseCommandLine, UsageError, wholeNumber } from '../cli/args.js';
import type { Target } from '../cli/target.js';
import { describe } from '../shared/errors.js';
import { DEFAULT_MAX_LIFETIME_SECONDS, issueToken } from '../shared/auth.js';
import { ALL_TENANTS } from '../shared/tenancy.js';
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
  // Outputs added later are optional, so a stack deployed before them still gets a stack file; the
  // commands that need them (dead-letter replay) say which is missing.
  const chunkStream = outputs[OUTPUTS.chunkStream];
  const queueUrl = outputs[OUTPUTS.deadLetterQueueUrl];
  const producer = outputs[OUTPUTS.producerFunction];
  const consumer = outputs[OUTPUTS.consumerFunction];
  return {
    target: {
      region: output(OUTPUTS.region),
      kinesis: { inputStream: output(OUTPUTS.inputStream), ...(chunkStream ? { chunkStream } : {}) },
      http: { url: output(OUTPUTS.httpUrl) },
      websocket: { url: output(OUTPUTS.webSocketUrl) },
      ...(queueUrl ? { deadLetters: { queueUrl } } : {}),
      ...(producer && consumer ? { lambda: { functions: { producer, consumer } } } : {}),
    },
    tokenSecretArn: output(OUTPUTS.tokenSecretArn),
  };
}

/**
 * The token signing key: AUTH_TOKEN_SECRET, or the stack's secret read with the AWS SDK (a ready
 * client, or one for the stack's region from the default credential chain).
 */
export async function signingKey(
  stack: DeployedStack,
  secrets?: SecretsManagerClient,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const fromEnv = env.AUTH_TOKEN_SECRET;
  if (fromEnv) return fromEnv;
  const client = secrets ?? new SecretsManagerClient({ region: stack.target.region });
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: stack.tokenSecretArn }));
    if (!SecretString) throw new Error('the secret has no string value');
    return SecretString;
  } catch (err) {
    throw new Error(
      `could not read the token key from ${stack.tokenSecretArn} (${describe(err)}); ` +
        "check credentials for the stack's account (secretsmanager:GetSecretValue), or set AUTH_TOKEN_SECRET to its value",
    );
  } finally {
    if (!secrets) client.destroy();
  }
}

/** What to write, from which outputs. */
export interface StackFileOptions {
  /** A `cdk deploy --outputs-file` file. */
  readonly outputsFile: string;
  readonly stackName?: string;
  /** Where to write. Default `.deployed/stack.json`. */
  readonly out?: string;
  /** The token's subject. Default `cli`. */
  readonly subject?: string;
  /** The token's lifetime in hours. Default 12, the longest the functions accept by default. */
  readonly tokenTtlHours?: number;
  /** Reads the stack's secret. Default: a client for the stack's region. */
  readonly secrets?: SecretsManagerClient;
}

/** Writes the stack file of a deployed stack (mode 600: its token grants access); returns its path. */
export async function writeStackFile(options: StackFileOptions): Promise<string> {
  const stack = deployedStackOf(
    JSON.parse(readFileSync(resolve(options.outputsFile), 'utf8')),
    options.stackName,
  );
  const subject = options.subject ?? 'cli';
  const ttlHours = options.tokenTtlHours ?? 12;
  // An admin token for every tenant, as long-lived as the functions accept by default (12 h).
  const token = await issueToken(await signingKey(stack, options.secrets), {
    subject,
    tenant: ALL_TENANTS,
    scopes: ['admin'],
    ttlSeconds: ttlHours * 3600,
  });
  const file: Target = { ...stack.target, token };
  const out = resolve(options.out ?? '.deployed/stack.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  return out;
}

const USAGE = `usage: npx tsx cdk/stack-file.ts <cdk-outputs.json> [--stack-name <name>] [--out <file>] [--subject <name>] [--token-ttl-hours <n>]
`;

async function main(argv: string[]): Promise<void> {
  const { options, ttlHours } = orExitWithUsage(USAGE, () => {
    const { values, positionals } = parseCommandLine(
      argv,
      {
        'stack-name': { type: 'string', default: CONTEXT_DEFAULTS.stackName },
        out: { type: 'string', default: '.deployed/stack.json' },
        subject: { type: 'string', default: 'cli' },
        'token-ttl-hours': { type: 'string', default: '12' },
      },
      true,
    );
    const [outputsFile] = positionals;
    if (!outputsFile || positionals.length > 1) throw new UsageError('give exactly one outputs file');
    const ttlHours = wholeNumber('--token-ttl-hours', values['token-ttl-hours'], {
      min: 1,
      max: DEFAULT_MAX_LIFETIME_SECONDS / 3600,
    });
    const options: StackFileOptions = {
      outputsFile,
      stackName: values['stack-name'],
      out: values.out,
      subject: values.subject,
      tokenTtlHours: ttlHours,
    };
    return { options, ttlHours };
  });
  const out = await writeStackFile(options);
  process.stdout.write(`wrote ${out} (token for "${options.subject}", valid ${ttlHours} h)\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
