import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { BedrockModels, parseModelId } from '../../../cdk/constructs/bedrock-models.js';
import { DeadLetterQueue } from '../../../cdk/constructs/dead-letters.js';
import { kinesisEventSourceProps } from '../../../cdk/constructs/event-sources.js';
import { HandlerFunction, handlerEntry } from '../../../cdk/constructs/handler-function.js';
import { WorkStreams } from '../../../cdk/constructs/streams.js';
import { grantItemActions, grantTableAccess } from '../../../cdk/constructs/tables.js';
import { TokenSecret } from '../../../cdk/constructs/token-secret.js';
import { ViewerWebSocketApi } from '../../../cdk/constructs/websocket-api.js';

const newStack = () =>
  new Stack(
    new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } }),
    'Test',
  );

const MAPPING = {
  batchSize: 100,
  maxBatchingWindowSeconds: 0,
  parallelizationFactor: 1,
  retryAttempts: 2,
  maxRecordAgeSeconds: 3600,
};

describe('construct props', () => {
  it.each([
    [
      { inputShardCount: -1 },
      /Streams: inputShardCount \(0 = on-demand\) must be an integer from 0 to 10000, got -1/,
    ],
    [
      { chunkShardCount: 1.5 },
      /chunkShardCount \(0 = on-demand\) must be an integer from 0 to 10000, got 1.5/,
    ],
    [{ retentionHours: 12 }, /retentionHours must be an integer from 24 to 8760, got 12/],
  ])('WorkStreams refuses %j at once', (props, message) => {
    expect(() => new WorkStreams(newStack(), 'Streams', props)).toThrow(message);
  });

  it.each([
    [{ parallelizationFactor: 11 }, /parallelizationFactor must be an integer from 1 to 10, got 11/],
    [{ batchSize: 0 }, /batchSize must be an integer from 1 to 10000, got 0/],
    [{ maxBatchingWindowSeconds: 301 }, /maxBatchingWindowSeconds must be an integer from 0 to 300, got 301/],
    [{ retryAttempts: -2 }, /retryAttempts must be an integer from 0 to 10000, got -2/],
    [{ maxRecordAgeSeconds: 59 }, /maxRecordAgeSeconds must be an integer from 60 to 604800, got 59/],
  ])('event source settings refuse %j, never falling back to the unbounded defaults', (override, message) => {
    const stack = newStack();
    const queue = new DeadLetterQueue(stack, 'Dlq');
    expect(() =>
      kinesisEventSourceProps(stack, { ...MAPPING, ...override }, queue.onFailureDestination),
    ).toThrow(message);
  });

  it('HandlerFunction refuses memory and timeouts Lambda would refuse', () => {
    const entry = handlerEntry('consumers/query-api/handler.ts');
    expect(() => new HandlerFunction(newStack(), 'F', { entry, description: 'x', memorySizeMb: 64 })).toThrow(
      /memorySizeMb must be an integer from 128 to 10240, got 64/,
    );
    expect(
      () => new HandlerFunction(newStack(), 'F', { entry, description: 'x', timeoutSeconds: 901 }),
    ).toThrow(/timeoutSeconds must be an integer from 1 to 900, got 901/);
  });

  it('ViewerWebSocketApi refuses a route timeout API Gateway would not wait for, and a bad stage name', () => {
    const stack = newStack();
    const table = new dynamodb.Table(stack, 'T', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    });
    const props = {
      connectionsTable: table,
      itemsTable: table,
      textTable: table,
      tokenSecret: new TokenSecret(stack, 'S'),
    };
    expect(() => new ViewerWebSocketApi(stack, 'Ws1', { ...props, timeoutSeconds: 30 })).toThrow(
      /timeoutSeconds \(API Gateway integration timeout\) must be an integer from 1 to 29, got 30/,
    );
    expect(() => new ViewerWebSocketApi(stack, 'Ws2', { ...props, stageName: '$live' })).toThrow(
      /stageName .*got "\$live"/,
    );
  });

  it('DeadLetterQueue refuses a retention SQS does not offer', () => {
    expect(() => new DeadLetterQueue(newStack(), 'Dlq', { retentionDays: 15 })).toThrow(
      /retentionDays must be an integer from 1 to 14, got 15/,
    );
  });
});

describe('parseModelId', () => {
  it('tells foundation models from cross-region inference profiles', () => {
    expect(parseModelId('anthropic.claude-3-5-haiku-20241022-v1:0')).toEqual({
      kind: 'foundation-model',
      id: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    });
    expect(parseModelId('us.anthropic.claude-3-5-haiku-20241022-v1:0')).toEqual({
      kind: 'inference-profile',
      id: 'us.anthropic.claude-3-5-haiku-20241022-v1:0',
      foundationModelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    });
    expect(parseModelId('global.amazon.nova-lite-v1:0')).toMatchObject({ kind: 'inference-profile' });
  });

  it.each(['claude', 'arn:aws:bedrock:us-east-1::foundation-model/x.y', 'us.', ''])(
    'refuses %j, naming the forms allowed',
    (id) => {
      expect(() => parseModelId(id)).toThrow(
        /is not valid: expected a Bedrock foundation model id .* or a cross-region inference profile id/,
      );
    },
  );

  it('BedrockModels needs at least one model and grants each configured model once', () => {
    const stack = newStack();
    expect(() => new BedrockModels(stack, 'None', { modelIds: [] })).toThrow(
      /modelIds must name at least one model, got \[\]/,
    );
    const models = new BedrockModels(stack, 'Models', {
      modelIds: ['amazon.nova-lite-v1:0', 'amazon.nova-lite-v1:0'],
    });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    models.grantInvoke(role);
    const policy = Template.fromStack(stack).findResources('AWS::IAM::Policy');
    const statements = Object.values(policy).flatMap((p) => p.Properties.PolicyDocument.Statement);
    expect(statements).toHaveLength(1);
    expect(JSON.stringify(statements[0].Resource).match(/foundation-model/g)).toHaveLength(1);
  });
});

describe('grantTableAccess', () => {
  it('refuses a grant of nothing and an index query without read', () => {
    const stack = newStack();
    const table = new dynamodb.Table(stack, 'T', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    expect(() => grantTableAccess(role, table, {})).toThrow(
      /give read and\/or write for table Test\/T, got \{\}/,
    );
    expect(() => grantTableAccess(role, table, { write: true, indexes: ['byStatus'] })).toThrow(
      /byStatus of Test\/T need read access/,
    );
  });

  it('grants write without read, and never Scan', () => {
    const stack = newStack();
    const table = new dynamodb.Table(stack, 'T', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    grantTableAccess(role, table, { write: true });
    const policy = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))[0]!;
    expect(policy.Properties.PolicyDocument.Statement[0].Action).toEqual([
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
    ]);
  });
});

describe('grantItemActions', () => {
  it('grants exactly the actions named, once each, on the table alone', () => {
    // Prepare
    const stack = newStack();
    const table = new dynamodb.Table(stack, 'T', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    // Act
    grantItemActions(role, table, ['UpdateItem', 'GetItem', 'UpdateItem']);
    // Assess
    const policy = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))[0]!;
    const [statement, ...others] = policy.Properties.PolicyDocument.Statement;
    expect(others).toEqual([]);
    expect(statement.Action).toEqual(['dynamodb:UpdateItem', 'dynamodb:GetItem']);
    expect(JSON.stringify(statement.Resource)).not.toContain('/index/');
    expect(() => grantItemActions(role, table, [])).toThrow(/name at least one action for table Test\/T/);
  });
});
