import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { deployedStackOf } from '../../../cdk/stack-file.js';
import { OUTPUTS } from '../../../cdk/stack.js';
import { loadTarget } from '../../../cli/target.js';
import { verifyToken } from '../../../shared/auth.js';

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
      },
      tokenSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:TokenSecret-xyz',
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
    await expect(verifyToken(secret, target.token)).resolves.toEqual({ subject: 'ops' });
    await expect(verifyToken('x'.repeat(64), target.token)).rejects.toThrow(/not valid/);
    expect(statSync(out).mode & 0o077).toBe(0);
  });
});
