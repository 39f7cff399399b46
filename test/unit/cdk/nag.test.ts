import { Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../../cdk/app.js';

const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
// CloudFormation's own template validation is slow and is run by the bundled synth (bundling.test.ts).
const FAST = { builtinCloudFormationValidation: false };

/** Every acknowledgement in the tree: construct path → rule id → reason. */
function acknowledgements(root: IConstruct): Array<{ path: string; rule: string; reason: string }> {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([rule, reason]) => ({
          path: c.node.path,
          rule: rule.replace(/^Annotation::/, ''),
          reason,
        })),
      ),
  );
}

describe('cdk-nag AWS Solutions checks', () => {
  it.each([
    ['the default context', {}],
    [
      'inference profiles, fallbacks, an alarm topic and no account logging role',
      {
        additionalModelIds: ['us.anthropic.claude-3-5-haiku-20241022-v1:0', 'eu.amazon.nova-lite-v1:0'],
        alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:ops',
        apiGatewayCloudWatchRole: false,
        removalPolicy: 'destroy',
        modelFallbacks: { 'anthropic.claude-3-5-haiku-20241022-v1:0': ['global.amazon.nova-pro-v1:0'] },
        modelQuotas: { 'global.amazon.nova-pro-v1:0': { requestsPerMinute: 10, tokensPerMinute: 1000 } },
      },
    ],
  ])('find nothing unacknowledged, not even a warning, with %s', (_name, context) => {
    // Prepare
    const { app, stack } = createApp({ ...FAST, context: { ...NO_BUNDLING, ...context } });
    // Act: synthesis runs the registered checks and throws on an error finding
    Template.fromStack(stack);
    const report = new AwsSolutionsChecks().validateScope(app);
    // Assess
    expect(
      report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath)}`),
    ).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('run on every synth of the app and fail it on a finding', () => {
    // Prepare: a table without point-in-time recovery (AwsSolutions-DDB3)
    const { stack } = createApp({ ...FAST, context: NO_BUNDLING });
    new dynamodb.Table(stack, 'Unprotected', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
    });
    // Act
    const attempt = () => Template.fromStack(stack);
    // Assess
    expect(attempt).toThrow(/AwsSolutions-DDB3/);
  });

  it('are acknowledged only where the code says why', () => {
    const { app } = createApp({
      ...FAST,
      context: { ...NO_BUNDLING, additionalModelIds: ['us.anthropic.claude-3-5-haiku-20241022-v1:0'] },
    });
    const acks = acknowledgements(app);
    for (const ack of acks) expect(ack.reason.length, `${ack.rule} at ${ack.path}`).toBeGreaterThan(80);
    expect([...new Set(acks.map((a) => a.rule.replace(/\[.*$/, '')))].sort()).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-DDB3',
      'AwsSolutions-IAM4',
      'AwsSolutions-IAM5',
      'AwsSolutions-SMG4',
      'AwsSolutions-SQS3',
    ]);
    const iam5 = acks.filter((a) => a.rule.startsWith('AwsSolutions-IAM5')).map((a) => `${a.path} ${a.rule}`);
    expect(iam5).toEqual([
      expect.stringMatching(
        /^KinesisModelStreams\/Generator\/Handler\/Role .*bedrock:\*::foundation-model\/anthropic\./,
      ),
      expect.stringMatching(
        /^KinesisModelStreams\/WebSocket\/MessageHandler\/Role .*\/live\/POST\/@connections\/\*\]$/,
      ),
      expect.stringMatching(
        /^KinesisModelStreams\/Reassembler\/Handler\/Role .*\/live\/\*\/@connections\/\*\]$/,
      ),
      expect.stringMatching(
        /^KinesisModelStreams\/ExpirySweeper\/Handler\/Role .*\/live\/DELETE\/@connections\/\*\]$/,
      ),
    ]);
  });
});
