import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { deployPlanOf } from '../../../cdk/deploy.js';
import { deployedStackOf, signingKey, writeStackFile } from '../../../cdk/stack-file.js';
import { UsageError } from '../../../cli/args.js';
import { OUTPUTS } from '../../../cdk/stack.js';
import { loadTarget } from '../../../cli/target.js';
import { createHmacVerifier, DEFAULT_AUDIENCE } from '../../../shared/auth.js';

const outputs = {
  KinesisModelStreams: {
    [OUTPUTS.region]: 'eu-west-1',
    [OUTPUTS.inputStream]: 'KinesisModelStreams-StreamsInputStream77307595-AbC',
    [OUTPUTS.httpUrl]: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
    [OUTPUTS.webSocketUrl]: 'wss://def456.execute-api.eu-west-1.amazonaws.com/live',
    [OUTPUTS.tokenSecretArn]: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:TokenSecret-xyz',
    [OUTPUTS.deadLetterQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
    [OUTPUTS.dashboardName]: 'MonitoringDashboard-abc',
  },
};

describe('deployedStackOf', () => {
  it('maps the stack outputs onto the command line’s target fields', () => {
    expect(deployedStackOf(outputs)).toEqual({
      target: {
        region: 'eu-west-1',
        kinesis: { inputStream: 'KinesisModelStreams-StreamsInputStream77307595-AbC' },
        http: { url: 'https://abc123.execute-api.eu-west-1.amazonaws.com' },
        websocket: { url: 'wss://def456.execute-api.eu-west-1.amazonaws.com/live' },
        deadLetters: { queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq' },
      },
      tokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:TokenSecret-xyz',
    });
  });

  it('adds what dead-letter replay needs when the stack outputs it', () => {
    const withReplay = {
      KinesisModelStreams: {
        ...outputs.KinesisModelStreams,
        [OUTPUTS.chunkStream]: 'KinesisModelStreams-StreamsChunkStream-XyZ',
        [OUTPUTS.producerFunction]: 'KinesisModelStreams-GeneratorHandler-1',
        [OUTPUTS.consumerFunction]: 'KinesisModelStreams-ReassemblerHandler-2',
      },
    };
    const { target } = deployedStackOf(withReplay);
    expect(target.kinesis.chunkStream).toBe('KinesisModelStreams-StreamsChunkStream-XyZ');
    expect(target.lambda).toEqual({
      functions: {
        producer: 'KinesisModelStreams-GeneratorHandler-1',
        consumer: 'KinesisModelStreams-ReassemblerHandler-2',
      },
    });
  });

  it('names the stack or output that is missing', () => {
    expect(() => deployedStackOf(outputs, 'Other')).toThrow(
      /no outputs for stack "Other" .*\["KinesisModelStreams"\]/,
    );
    const { [OUTPUTS.webSocketUrl]: _dropped, ...rest } = outputs.KinesisModelStreams;
    expect(() => deployedStackOf({ KinesisModelStreams: rest })).toThrow(/has no output "WebSocketUrl"/);
  });
});

describe('npx tsx cdk/stack-file.ts', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes a stack file the command line loads, holding a token signed with the stack’s key', async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), 'stack-file-'));
    const outputsFile = join(dir, 'cdk-outputs.json');
    const out = join(dir, 'deployed', 'stack.json');
    writeFileSync(outputsFile, JSON.stringify(outputs));
    const secret = 'k'.repeat(64);
    // Act
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('../../../cdk/stack-file.ts', import.meta.url)),
        outputsFile,
        '--out',
        out,
        '--subject',
        'ops',
      ],
      { env: { ...process.env, AUTH_TOKEN_SECRET: secret }, encoding: 'utf8' },
    );
    // Assess
    const target = loadTarget(['--stack', out]);
    expect(target).toMatchObject({
      region: 'eu-west-1',
      websocket: { url: outputs.KinesisModelStreams.WebSocketUrl },
    });
    const rules = { audience: DEFAULT_AUDIENCE, maxLifetimeSeconds: 12 * 3600, clockSkewSeconds: 60 };
    const claims = { tenant: 'tenant', scope: 'scope' };
    await expect(
      createHmacVerifier({ ...rules, claims, secret }).verify(target.token),
    ).resolves.toMatchObject({
      subject: 'ops',
      tenant: '*',
      scopes: new Set(['admin']),
    });
    await expect(
      createHmacVerifier({ ...rules, claims, secret: 'x'.repeat(64) }).verify(target.token),
    ).rejects.toThrow(/not valid/);
    expect(statSync(out).mode & 0o077).toBe(0);
  });
});

describe('the stack file of a deployed stack, key read with the AWS SDK', () => {
  let dir: string | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await new Promise((done) => (server ? server.close(done) : done(undefined)));
  });

  /** A loopback endpoint answering Secrets Manager's GetSecretValue (JSON 1.1) for one secret. */
  async function secretsEndpoint(arn: string, value: string) {
    const requests: Array<{ target: string; body: unknown }> = [];
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        const body = JSON.parse(raw) as { SecretId?: string };
        requests.push({ target: String(req.headers['x-amz-target']), body });
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (body.SecretId !== arn) {
          res.statusCode = 400;
          res.end(
            JSON.stringify({
              __type: 'ResourceNotFoundException',
              message: 'Secrets Manager can’t find the specified secret.',
            }),
          );
          return;
        }
        res.end(JSON.stringify({ ARN: arn, Name: 'TokenSecret', SecretString: value }));
      });
    });
    await new Promise<void>((done) => server?.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;
    const client = new SecretsManagerClient({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    return { client, requests };
  }

  it('reads the signing key from the stack’s secret and signs the token with it', async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), 'stack-file-sdk-'));
    const outputsFile = join(dir, 'cdk-outputs.json');
    writeFileSync(outputsFile, JSON.stringify(outputs));
    const secret = 's'.repeat(64);
    const { client, requests } = await secretsEndpoint(outputs.KinesisModelStreams.TokenSecretArn, secret);
    // Act
    const out = await writeStackFile({
      outputsFile,
      out: join(dir, 'stack.json'),
      subject: 'ops',
      secrets: client,
    });
    // Assess
    expect(requests).toEqual([
      {
        target: 'secretsmanager.GetSecretValue',
        body: { SecretId: outputs.KinesisModelStreams.TokenSecretArn },
      },
    ]);
    const target = loadTarget(['--stack', out]);
    const verifier = createHmacVerifier({
      secret,
      audience: DEFAULT_AUDIENCE,
      maxLifetimeSeconds: 12 * 3600,
      clockSkewSeconds: 60,
      claims: { tenant: 'tenant', scope: 'scope' },
    });
    await expect(verifier.verify(target.token)).resolves.toMatchObject({ subject: 'ops', tenant: '*' });
    expect(statSync(out).mode & 0o077).toBe(0);
  });

  it('says which secret could not be read, and how to go on without it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'stack-file-sdk-'));
    const outputsFile = join(dir, 'cdk-outputs.json');
    writeFileSync(outputsFile, JSON.stringify(outputs));
    const { client } = await secretsEndpoint(
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:other',
      'x',
    );
    const stack = deployedStackOf(outputs);
    await expect(signingKey(stack, client, {})).rejects.toThrow(
      /could not read the token key from arn:aws:secretsmanager:eu-west-1:123456789012:secret:TokenSecret-xyz \(.*ResourceNotFoundException.*\).*AUTH_TOKEN_SECRET/,
    );
    await expect(signingKey(stack, client, { AUTH_TOKEN_SECRET: 'from-env' })).resolves.toBe('from-env');
  });
});

describe('npm run deploy', () => {
  it('runs cdk deploy for the stack with an outputs file, passing on what follows a second --', () => {
    expect(deployPlanOf([])).toEqual({
      stackName: 'KinesisModelStreams',
      outputsFile: 'cdk-outputs.json',
      out: '.deployed/stack.json',
      cdkArgs: ['deploy', 'KinesisModelStreams', '--outputs-file', 'cdk-outputs.json'],
    });
    expect(
      deployPlanOf([
        '--out',
        'x.json',
        '--outputs-file',
        'o.json',
        '--',
        '-c',
        'modelId=m',
        '--require-approval',
        'never',
      ]),
    ).toMatchObject({
      out: 'x.json',
      cdkArgs: [
        'deploy',
        'KinesisModelStreams',
        '--outputs-file',
        'o.json',
        '-c',
        'modelId=m',
        '--require-approval',
        'never',
      ],
    });
    expect(deployPlanOf(['--help'])).toBe('help');
  });

  it('rejects unknown flags and an outputs file given to cdk directly', () => {
    expect(() => deployPlanOf(['--stak', 'x'])).toThrow(UsageError);
    expect(() => deployPlanOf(['--', '--outputs-file', 'elsewhere.json'])).toThrow(/before the second --/);
  });
});
