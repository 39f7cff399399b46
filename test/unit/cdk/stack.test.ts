import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { OUTPUTS } from '../../../cdk/stack.js';
import { ENV } from '../../../shared/env.js';
import { TABLES, TTL_ATTRIBUTE } from '../../../shared/tables.js';
import { METRICS_NAMESPACE, SERVICE } from '../../../shared/telemetry.js';
import {
  actionsOf,
  type CfnTemplate,
  idsOf,
  referencedIds,
  resourceOf,
  type Statement,
  statementsOf,
  synthesize,
} from './synthesize.js';

type Synth = ReturnType<typeof synthesize>;

/** The function whose logical id starts with `prefix`, with its environment and role. */
function fn(t: CfnTemplate, prefix: string) {
  const [id, resource] = resourceOf(t, 'AWS::Lambda::Function', prefix);
  const p = resource.Properties as {
    Environment: { Variables: Record<string, unknown> };
    Role: { 'Fn::GetAtt': [string, string] };
    [key: string]: unknown;
  };
  return { id, props: p, env: p.Environment.Variables, roleId: p.Role['Fn::GetAtt'][0] };
}

const FUNCTIONS = {
  generator: 'GeneratorHandlerFunction',
  reassembler: 'ReassemblerHandlerFunction',
  query: 'QueryApiHandlerFunction',
  connect: 'WebSocketConnectHandlerFunction',
  disconnect: 'WebSocketDisconnectHandlerFunction',
  message: 'WebSocketMessageHandlerFunction',
  sweeper: 'SweeperHandlerFunction',
  expirySweeper: 'ExpirySweeperHandlerFunction',
} as const;

describe('the stack with the default context', () => {
  let synth: Synth;
  let t: CfnTemplate;
  beforeAll(() => {
    synth = synthesize();
    t = synth.json;
  });

  it('is environment-agnostic, so it synthesizes offline with no account or region lookups', () => {
    expect(synth.stack.environment).toBe('aws://unknown-account/unknown-region');
    expect(synth.app.node.getContext('aws:cdk:bundling-stacks')).toEqual([]);
  });

  describe('streams', () => {
    it('encrypts both streams with KMS and runs them on demand', () => {
      expect(idsOf(t, 'AWS::Kinesis::Stream')).toHaveLength(2);
      synth.template.resourcePropertiesCountIs(
        'AWS::Kinesis::Stream',
        {
          StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
          StreamModeDetails: { StreamMode: 'ON_DEMAND' },
          ShardCount: Match.absent(),
          RetentionPeriodHours: 24,
        },
        2,
      );
    });

    it('reads the chunk stream through an enhanced fan-out consumer and the input stream by polling', () => {
      const [consumerId, consumer] = resourceOf(t, 'AWS::Kinesis::StreamConsumer', 'Reassembler');
      const chunkStreamId = resourceOf(t, 'AWS::Kinesis::Stream', 'StreamsChunkStream')[0];
      const inputStreamId = resourceOf(t, 'AWS::Kinesis::Stream', 'StreamsInputStream')[0];
      expect(consumer.Properties?.StreamARN).toEqual({ 'Fn::GetAtt': [chunkStreamId, 'Arn'] });

      const mappings = Object.fromEntries(
        idsOf(t, 'AWS::Lambda::EventSourceMapping').map((id) => {
          const p = t.Resources[id]!.Properties!;
          return [(p.FunctionName as { Ref: string }).Ref, p.EventSourceArn];
        }),
      );
      expect(mappings).toEqual({
        [fn(t, FUNCTIONS.generator).id]: { 'Fn::GetAtt': [inputStreamId, 'Arn'] },
        [fn(t, FUNCTIONS.reassembler).id]: { 'Fn::GetAtt': [consumerId, 'ConsumerARN'] },
      });
    });

    it('gives every event source mapping bounded, explicit settings and the dead-letter queue on failure', () => {
      const queueId = resourceOf(t, 'AWS::SQS::Queue', 'DeadLetters')[0];
      const common = {
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        StartingPosition: 'TRIM_HORIZON',
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
      };
      synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        ...common,
        FunctionName: { Ref: fn(t, FUNCTIONS.generator).id },
        BatchSize: 20,
        MaximumBatchingWindowInSeconds: 1,
        ParallelizationFactor: 10,
        MaximumRetryAttempts: Match.absent(),
        MaximumRecordAgeInSeconds: 21_600,
      });
      synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        ...common,
        FunctionName: { Ref: fn(t, FUNCTIONS.reassembler).id },
        BatchSize: 500,
        MaximumBatchingWindowInSeconds: 0,
        ParallelizationFactor: 4,
        MaximumRetryAttempts: Match.absent(),
        MaximumRecordAgeInSeconds: 21_600,
      });
    });
  });

  describe('dead letters', () => {
    it('keeps them in a KMS-encrypted queue that refuses requests without TLS', () => {
      synth.template.hasResourceProperties('AWS::SQS::Queue', {
        KmsMasterKeyId: 'alias/aws/sqs',
        MessageRetentionPeriod: 14 * 24 * 3600,
      });
      synth.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    });

    it('tells the stream handlers where their own dead letters go, and lets only them send', () => {
      const queueId = resourceOf(t, 'AWS::SQS::Queue', 'DeadLetters')[0];
      for (const name of [FUNCTIONS.generator, FUNCTIONS.reassembler]) {
        const f = fn(t, name);
        expect(f.env[ENV.deadLetterQueueUrl]).toEqual({ Ref: queueId });
        expect(statementsOf(t, f.roleId).some((s) => actionsOf(s).includes('sqs:SendMessage'))).toBe(true);
      }
      for (const name of [FUNCTIONS.query, FUNCTIONS.connect, FUNCTIONS.disconnect, FUNCTIONS.message]) {
        expect(
          statementsOf(t, fn(t, name).roleId).some((s) => actionsOf(s).some((a) => a.startsWith('sqs:'))),
        ).toBe(false);
      }
    });
  });

  describe('functions', () => {
    it('runs eight functions on the latest Node runtime, each with its own role and log group', () => {
      const ids = idsOf(t, 'AWS::Lambda::Function');
      expect(ids).toHaveLength(8);
      const roles = new Set<string>();
      for (const prefix of Object.values(FUNCTIONS)) {
        const f = fn(t, prefix);
        expect(f.props.Runtime).toBe('nodejs24.x');
        expect(f.props.Architectures).toEqual(['arm64']);
        expect(f.props.LoggingConfig).toMatchObject({ LogFormat: 'JSON', ApplicationLogLevel: 'INFO' });
        expect(referencedIds((f.props.LoggingConfig as { LogGroup: unknown }).LogGroup).size).toBe(1);
        roles.add(f.roleId);
      }
      expect(roles.size).toBe(8);
    });

    it('points each function at its export of the handler module', () => {
      const handlers = Object.fromEntries(
        Object.entries(FUNCTIONS).map(([name, prefix]) => [name, fn(t, prefix).props.Handler]),
      );
      expect(handlers).toEqual({
        generator: 'index.handler',
        reassembler: 'index.handler',
        query: 'index.handler',
        connect: 'index.connect',
        disconnect: 'index.disconnect',
        message: 'index.message',
        sweeper: 'index.handler',
        expirySweeper: 'index.sweepExpired',
      });
    });

    it('sets the Powertools service name, metrics namespace and log level on every function', () => {
      for (const prefix of Object.values(FUNCTIONS)) {
        expect(fn(t, prefix).env).toMatchObject({
          POWERTOOLS_SERVICE_NAME: SERVICE,
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          POWERTOOLS_LOG_LEVEL: 'INFO',
        });
      }
    });

    it('names the resources each handler uses with the shared environment variable names', () => {
      const streamRef = (prefix: string) => ({ Ref: resourceOf(t, 'AWS::Kinesis::Stream', prefix)[0] });
      const tableRef = (prefix: string) => ({ Ref: resourceOf(t, 'AWS::DynamoDB::Table', prefix)[0] });
      expect(fn(t, FUNCTIONS.generator).env).toMatchObject({
        [ENV.inputStream]: streamRef('StreamsInputStream'),
        [ENV.chunkStream]: streamRef('StreamsChunkStream'),
        [ENV.itemsTable]: tableRef('TablesItems'),
        [ENV.coordinationTable]: tableRef('TablesCoordination'),
        [ENV.defaultModelId]: 'anthropic.claude-3-5-haiku-20241022-v1:0',
      });
      expect(fn(t, FUNCTIONS.reassembler).env).toMatchObject({
        [ENV.itemsTable]: tableRef('TablesItems'),
        [ENV.textTable]: tableRef('TablesItemText'),
        [ENV.connectionsTable]: tableRef('TablesConnections'),
        [ENV.coordinationTable]: tableRef('TablesCoordination'),
      });
      // Only the two flow-control parties know the coordination table.
      for (const name of [FUNCTIONS.query, FUNCTIONS.connect, FUNCTIONS.disconnect, FUNCTIONS.message]) {
        expect(fn(t, name).env[ENV.coordinationTable]).toBeUndefined();
      }
      expect(fn(t, FUNCTIONS.query).env).toMatchObject({
        [ENV.itemsTable]: tableRef('TablesItems'),
        [ENV.textTable]: tableRef('TablesItemText'),
      });
      for (const name of [FUNCTIONS.connect, FUNCTIONS.disconnect, FUNCTIONS.message]) {
        expect(fn(t, name).env[ENV.connectionsTable]).toEqual(tableRef('TablesConnections'));
      }
      // Every variable set is one the handlers read.
      const known = new Set<string>(Object.values(ENV));
      for (const prefix of Object.values(FUNCTIONS)) {
        const unknown = Object.keys(fn(t, prefix).env).filter(
          (name) => !known.has(name) && !name.startsWith('POWERTOOLS_') && name !== 'NODE_OPTIONS',
        );
        expect(unknown).toEqual([]);
      }
    });
  });

  describe('token secret', () => {
    it('is generated by Secrets Manager and read at run time by the verifying functions only, never in their environment', () => {
      const [secretId, secret] = resourceOf(t, 'AWS::SecretsManager::Secret', 'TokenSecret');
      expect(secret.Properties?.GenerateSecretString).toMatchObject({
        PasswordLength: 64,
        ExcludePunctuation: true,
      });
      expect(secret.Properties?.SecretString).toBeUndefined();
      const readers = new Set<string>();
      for (const name of Object.values(FUNCTIONS)) {
        const { env, roleId } = fn(t, name);
        expect(env[ENV.authSecret]).toBeUndefined();
        const reads = statementsOf(t, roleId).some(
          (s) =>
            actionsOf(s).includes('secretsmanager:GetSecretValue') && JSON.stringify(s).includes(secretId),
        );
        if (reads) readers.add(name);
        expect(env[ENV.authSecretArn] !== undefined).toBe(reads);
      }
      expect([...readers].sort()).toEqual([FUNCTIONS.connect, FUNCTIONS.query].sort());
    });
  });

  describe('tables', () => {
    it('creates the tables of the shared specification, on demand, with TTL and point-in-time recovery', () => {
      const specs = {
        TablesItems: TABLES.items,
        TablesItemText: TABLES.text,
        TablesConnections: TABLES.connections,
        TablesCoordination: TABLES.coordination,
      };
      expect(idsOf(t, 'AWS::DynamoDB::Table')).toHaveLength(4);
      for (const [prefix, spec] of Object.entries(specs)) {
        const p = resourceOf(t, 'AWS::DynamoDB::Table', prefix)[1].Properties!;
        expect(p.BillingMode).toBe('PAY_PER_REQUEST');
        expect(p.TimeToLiveSpecification).toEqual({ AttributeName: TTL_ATTRIBUTE, Enabled: true });
        // Coordination rows are soft state, rebuilt within a minute: no recovery copy to pay for.
        expect(p.PointInTimeRecoverySpecification).toEqual({
          PointInTimeRecoveryEnabled: prefix !== 'TablesCoordination',
        });
        expect(p.KeySchema).toEqual([
          { AttributeName: spec.partitionKey, KeyType: 'HASH' },
          ...('sortKey' in spec ? [{ AttributeName: spec.sortKey, KeyType: 'RANGE' }] : []),
        ]);
        const indexes = (p.GlobalSecondaryIndexes ?? []) as Array<{
          IndexName: string;
          KeySchema: unknown;
          Projection: unknown;
        }>;
        // Only the summary attributes are projected: appending text must not cost an index write.
        expect(indexes.map((i) => [i.IndexName, i.KeySchema, i.Projection])).toEqual(
          ('indexes' in spec ? spec.indexes : []).map((i) => [
            i.name,
            [
              { AttributeName: i.partitionKey, KeyType: 'HASH' },
              { AttributeName: i.sortKey, KeyType: 'RANGE' },
            ],
            { ProjectionType: 'INCLUDE', NonKeyAttributes: [...i.projected] },
          ]),
        );
      }
    });
  });

  describe('WebSocket API', () => {
    it('selects routes by the action field and serves every route of the protocol', () => {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
        ProtocolType: 'WEBSOCKET',
        RouteSelectionExpression: '$request.body.action',
      });
      const routes = idsOf(t, 'AWS::ApiGatewayV2::Route')
        .map((id) => t.Resources[id]!.Properties!)
        .filter((p) => (p.ApiId as { Ref: string }).Ref.startsWith('WebSocketApi'))
        .map((p) => p.RouteKey)
        .sort();
      expect(routes).toEqual(['$connect', '$default', '$disconnect', 'cancel', 'subscribe', 'unsubscribe']);
    });

    it('deploys a throttled stage with JSON access logs', () => {
      const [, stage] = resourceOf(t, 'AWS::ApiGatewayV2::Stage', 'WebSocketStage');
      const p = stage.Properties as {
        AccessLogSettings: { DestinationArn: unknown; Format: string };
      } & Record<string, unknown>;
      expect(p.StageName).toBe('live');
      expect(p.AutoDeploy).toBe(true);
      expect(p.DefaultRouteSettings).toEqual({ ThrottlingBurstLimit: 400, ThrottlingRateLimit: 200 });
      expect(referencedIds(p.AccessLogSettings.DestinationArn)).toEqual(
        new Set([resourceOf(t, 'AWS::Logs::LogGroup', 'WebSocketAccessLogs')[0]]),
      );
      expect(JSON.parse(p.AccessLogSettings.Format)).toMatchObject({
        connectionId: '$context.connectionId',
        routeKey: '$context.routeKey',
      });
    });

    it('sets the account logging role before the stage, which API Gateway needs for WebSocket access logs', () => {
      const [accountId] = resourceOf(t, 'AWS::ApiGateway::Account', 'ApiGatewayLogging');
      expect(resourceOf(t, 'AWS::ApiGatewayV2::Stage', 'WebSocketStage')[1].DependsOn).toContain(accountId);
    });

    it('gives the posting functions the stage callback URL and the management API grant of the stage', () => {
      const apiId = resourceOf(t, 'AWS::ApiGatewayV2::Api', 'WebSocketApi')[0];
      const callbackUrl = {
        'Fn::Join': [
          '',
          [
            'https://',
            { Ref: apiId },
            '.execute-api.',
            { Ref: 'AWS::Region' },
            '.',
            { Ref: 'AWS::URLSuffix' },
            '/live',
          ],
        ],
      };
      for (const name of [FUNCTIONS.reassembler, FUNCTIONS.message]) {
        const f = fn(t, name);
        expect(f.env[ENV.websocketManagementEndpoint]).toEqual(callbackUrl);
        const manage = statementsOf(t, f.roleId).filter((s) =>
          actionsOf(s).includes('execute-api:ManageConnections'),
        );
        expect(manage).toHaveLength(1);
        // The reassembler closes connections (DELETE); the message function only replies (POST).
        const path = name === FUNCTIONS.message ? '/live/POST/@connections/*' : '/live/*/@connections/*';
        expect(JSON.stringify(manage[0]!.Resource)).toContain(path);
        expect(referencedIds(manage[0]!.Resource)).toContain(apiId);
      }
      for (const name of [FUNCTIONS.generator, FUNCTIONS.query, FUNCTIONS.connect, FUNCTIONS.disconnect]) {
        const grants = statementsOf(t, fn(t, name).roleId).flatMap(actionsOf);
        expect(grants).not.toContain('execute-api:ManageConnections');
      }
    });
  });

  describe('HTTP query API', () => {
    it('routes GET /items/{itemId} and GET /items to the query function', () => {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
      const queryFn = fn(t, FUNCTIONS.query).id;
      const routes = idsOf(t, 'AWS::ApiGatewayV2::Route')
        .map((id) => t.Resources[id]!.Properties!)
        .filter((p) => (p.ApiId as { Ref: string }).Ref.startsWith('QueryApi'));
      expect(routes.map((r) => r.RouteKey).sort()).toEqual(['GET /items', 'GET /items/{itemId}']);
      for (const route of routes) {
        const integrationId = [...referencedIds(route.Target)][0]!;
        expect(referencedIds(t.Resources[integrationId]!.Properties!.IntegrationUri)).toContain(queryFn);
      }
    });

    it('serves a throttled $default stage with access logs', () => {
      synth.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingBurstLimit: 400, ThrottlingRateLimit: 200 },
        AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      });
    });
  });

  describe('least privilege', () => {
    const tableIds = (t: CfnTemplate, roleId: string) => {
      const tables = new Set(idsOf(t, 'AWS::DynamoDB::Table'));
      return new Set(
        statementsOf(t, roleId)
          .filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')))
          .flatMap((s) => [...referencedIds(s.Resource)].filter((id) => tables.has(id))),
      );
    };
    const prefixOf = (ids: Set<string>) => [...ids].map((id) => id.replace(/[0-9A-F]{8}$/, '')).sort();

    it('lets each function reach only its own tables', () => {
      expect(prefixOf(tableIds(t, fn(t, FUNCTIONS.generator).roleId))).toEqual([
        'TablesCoordination',
        'TablesItems',
      ]);
      expect(prefixOf(tableIds(t, fn(t, FUNCTIONS.reassembler).roleId))).toEqual([
        'TablesConnections',
        'TablesCoordination',
        'TablesItemText',
        'TablesItems',
      ]);
      expect(prefixOf(tableIds(t, fn(t, FUNCTIONS.query).roleId))).toEqual(['TablesItemText', 'TablesItems']);
      expect(prefixOf(tableIds(t, fn(t, FUNCTIONS.connect).roleId))).toEqual(['TablesConnections']);
      expect(prefixOf(tableIds(t, fn(t, FUNCTIONS.disconnect).roleId))).toEqual(['TablesConnections']);
      expect(prefixOf(tableIds(t, fn(t, FUNCTIONS.message).roleId))).toEqual([
        'TablesConnections',
        'TablesItemText',
        'TablesItems',
      ]);
    });

    it('lets the WebSocket message function get and update items, query text, and only POST to connections', () => {
      const [items] = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesItems');
      const [text] = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesItemText');
      const statements = statementsOf(t, fn(t, FUNCTIONS.message).roleId);
      const on = (table: string | undefined) =>
        statements
          .filter((s) => referencedIds(s.Resource).has(table ?? ''))
          .flatMap(actionsOf)
          .sort();
      expect(on(items)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
      expect(on(text)).toEqual(['dynamodb:Query']);
      for (const s of statements.filter((s) => referencedIds(s.Resource).has(items ?? ''))) {
        // The table itself: no index, no wildcard.
        expect(JSON.stringify(s.Resource)).not.toContain('index');
      }
      const manage = statements.filter((s) => actionsOf(s).includes('execute-api:ManageConnections'));
      expect(manage.map((s) => JSON.stringify(s.Resource))).toEqual([
        expect.stringMatching(/\/live\/POST\/@connections\/\*"/),
      ]);
      expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('execute-api:'))).toEqual([
        'execute-api:ManageConnections',
      ]);
    });

    it('lets the generator get and update coordination rows, and the reassembler only update them', () => {
      const coordination = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesCoordination')[0];
      const actionsOn = (prefix: string) =>
        statementsOf(t, fn(t, prefix).roleId)
          .filter((s) => referencedIds(s.Resource).has(coordination))
          .flatMap(actionsOf)
          .sort();
      expect(actionsOn(FUNCTIONS.generator)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
      expect(actionsOn(FUNCTIONS.reassembler)).toEqual(['dynamodb:UpdateItem']);
    });

    it('lets the query API only read, and query only the byTenantStatus index', () => {
      const statements = statementsOf(t, fn(t, FUNCTIONS.query).roleId).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('dynamodb:')),
      );
      const actions = new Set(statements.flatMap(actionsOf));
      expect([...actions].sort()).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:GetItem',
        'dynamodb:Query',
      ]);
      expect(JSON.stringify(statements)).toContain('/index/byTenantStatus');
      expect(JSON.stringify(statements)).not.toContain('/index/*');
    });

    it('lets each function reach only its own streams', () => {
      const streams = new Set([
        ...idsOf(t, 'AWS::Kinesis::Stream'),
        ...idsOf(t, 'AWS::Kinesis::StreamConsumer'),
      ]);
      const kinesisOf = (prefix: string) =>
        statementsOf(t, fn(t, prefix).roleId)
          .filter((s) => actionsOf(s).some((a) => a.startsWith('kinesis:')))
          .map((s) => ({
            writes: actionsOf(s).some((a) => a.startsWith('kinesis:Put')),
            on: [...referencedIds(s.Resource)]
              .filter((id) => streams.has(id))
              .map((id) => id.replace(/[0-9A-F]{8}$/, '')),
          }));
      const generator = kinesisOf(FUNCTIONS.generator);
      expect(generator.filter((g) => g.writes).flatMap((g) => g.on)).toEqual(['StreamsChunkStream']);
      expect(generator.filter((g) => !g.writes).flatMap((g) => g.on)).toEqual(['StreamsInputStream']);
      const reassembler = kinesisOf(FUNCTIONS.reassembler);
      expect(reassembler.some((r) => r.writes)).toBe(false);
      expect(new Set(reassembler.flatMap((r) => r.on))).toEqual(
        new Set(['StreamsChunkStream', 'ReassemblerStreamConsumer']),
      );
      for (const name of [FUNCTIONS.query, FUNCTIONS.connect, FUNCTIONS.disconnect, FUNCTIONS.message]) {
        expect(kinesisOf(name)).toEqual([]);
      }
    });

    it('lets only the generator invoke Bedrock, and only the configured model', () => {
      const bedrock = (prefix: string) =>
        statementsOf(t, fn(t, prefix).roleId).filter((s) =>
          actionsOf(s).some((a) => a.startsWith('bedrock:')),
        );
      const [statement, ...others] = bedrock(FUNCTIONS.generator);
      expect(others).toEqual([]);
      expect(actionsOf(statement!).sort()).toEqual([
        'bedrock:InvokeModel',
        'bedrock:InvokeModelWithResponseStream',
      ]);
      expect(statement!.Resource).toEqual({
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':bedrock:',
            { Ref: 'AWS::Region' },
            '::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
          ],
        ],
      });
      for (const name of [
        FUNCTIONS.reassembler,
        FUNCTIONS.query,
        FUNCTIONS.connect,
        FUNCTIONS.disconnect,
        FUNCTIONS.message,
      ]) {
        expect(bedrock(name)).toEqual([]);
      }
    });

    it('never grants an action on every resource, and attaches no AWS managed policy to a function', () => {
      const everything = Object.values(t.Resources)
        .filter((r) => r.Type === 'AWS::IAM::Policy')
        .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement)
        .filter((s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
      expect(everything).toEqual([]);
      for (const prefix of Object.values(FUNCTIONS)) {
        expect(t.Resources[fn(t, prefix).roleId]!.Properties!.ManagedPolicyArns).toBeUndefined();
      }
    });
  });

  describe('alarms and dashboard', () => {
    const alarms = (t: CfnTemplate) =>
      Object.fromEntries(
        idsOf(t, 'AWS::CloudWatch::Alarm').map((id) => [
          id.replace(/^Monitoring|[0-9A-F]{8}$/g, ''),
          t.Resources[id]!.Properties!,
        ]),
      );
    const metricNames = (alarm: Record<string, unknown>) =>
      alarm.MetricName !== undefined
        ? [alarm.MetricName]
        : (alarm.Metrics as Array<{ MetricStat?: { Metric: { MetricName: string } } }>)
            .filter((m) => m.MetricStat)
            .map((m) => m.MetricStat!.Metric.MetricName);

    it('alarms on iterator age, dead letters, throttles and every function’s errors', () => {
      const a = alarms(t);
      expect(Object.keys(a).sort()).toEqual([
        'BedrockThrottles',
        'BreakerOpen',
        'ChunkIteratorAge',
        'DeadLetters',
        'ExpirySweeperErrors',
        'GeneratorErrors',
        'InputIteratorAge',
        'ItemsStalled',
        'KinesisThrottles',
        'ModelThrottles',
        'QueryApiErrors',
        'QueueWait',
        'QuotaWaitExceeded',
        'ReassemblerErrors',
        'SweeperErrors',
        'WaitingReleased',
        'WebSocketConnectErrors',
        'WebSocketDisconnectErrors',
        'WebSocketMessageErrors',
      ]);
      expect(a.InputIteratorAge).toMatchObject({
        MetricName: 'IteratorAge',
        Namespace: 'AWS/Lambda',
        Statistic: 'Maximum',
        Threshold: 300_000,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fn(t, FUNCTIONS.generator).id } }],
      });
      expect(a.ChunkIteratorAge).toMatchObject({
        MetricName: 'IteratorAge',
        Threshold: 30_000,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fn(t, FUNCTIONS.reassembler).id } }],
      });
      expect(a.DeadLetters).toMatchObject({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Threshold: 1,
      });
      expect(metricNames(a.BedrockThrottles!)).toEqual(['InvocationThrottles']);
      expect(metricNames(a.KinesisThrottles!).sort()).toEqual([
        'ReadProvisionedThroughputExceeded',
        'WriteProvisionedThroughputExceeded',
        'WriteProvisionedThroughputExceeded',
      ]);
      expect(a.GeneratorErrors).toMatchObject({
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Threshold: 1,
      });
      for (const alarm of Object.values(a)) {
        expect(alarm.ComparisonOperator).toBe('GreaterThanOrEqualToThreshold');
        expect(alarm.AlarmActions).toBeUndefined();
      }
    });

    it('alarms on sustained model throttling, items waiting too long and an open breaker', () => {
      const a = alarms(t);
      const producer = {
        Namespace: METRICS_NAMESPACE,
        Statistic: 'Sum',
        Dimensions: [
          { Name: 'function', Value: 'producer' },
          { Name: 'service', Value: SERVICE },
        ],
      };
      const sorted = (alarm: Record<string, unknown>) => ({
        ...alarm,
        Dimensions: [...(alarm.Dimensions as Array<{ Name: string }>)].sort((x, y) =>
          x.Name.localeCompare(y.Name),
        ),
      });
      expect(metricNames(a.ModelThrottles!).sort()).toEqual(['ModelRequestsRefused', 'ModelThrottles']);
      expect(a.ModelThrottles).toMatchObject({ Threshold: 10, EvaluationPeriods: 3 });
      expect(sorted(a.QuotaWaitExceeded!)).toMatchObject({
        ...producer,
        MetricName: 'QuotaWaitExceeded',
        Threshold: 1,
        EvaluationPeriods: 1,
      });
      expect(sorted(a.WaitingReleased!)).toMatchObject({
        ...producer,
        MetricName: 'WaitingReleased',
        Threshold: 1,
        EvaluationPeriods: 3,
      });
      expect(sorted(a.BreakerOpen!)).toMatchObject({
        ...producer,
        MetricName: 'BreakerOpenings',
        Threshold: 1,
        EvaluationPeriods: 1,
      });
      // The longest wait in a period, reported on admission and when an invocation ends still waiting.
      expect(sorted(a.QueueWait!)).toMatchObject({
        ...producer,
        MetricName: 'QueueWait',
        Statistic: 'Maximum',
        Threshold: 300_000,
        EvaluationPeriods: 1,
      });
      for (const alarm of [
        a.QuotaWaitExceeded,
        a.WaitingReleased,
        a.BreakerOpen,
        a.ModelThrottles,
        a.QueueWait,
      ]) {
        expect(alarm!.TreatMissingData).toBe('notBreaching');
      }
    });

    it('builds one dashboard', () => {
      expect(idsOf(t, 'AWS::CloudWatch::Dashboard')).toHaveLength(1);
    });
  });

  it('outputs what the command line’s stack file needs', () => {
    const outputs = t.Outputs;
    expect(outputs[OUTPUTS.region]!.Value).toEqual({ Ref: 'AWS::Region' });
    expect(outputs[OUTPUTS.inputStream]!.Value).toEqual({
      Ref: resourceOf(t, 'AWS::Kinesis::Stream', 'StreamsInputStream')[0],
    });
    expect(outputs[OUTPUTS.httpUrl]!.Value).toEqual({
      'Fn::GetAtt': [resourceOf(t, 'AWS::ApiGatewayV2::Api', 'QueryApi')[0], 'ApiEndpoint'],
    });
    expect(JSON.stringify(outputs[OUTPUTS.webSocketUrl]!.Value)).toMatch(
      /^\{"Fn::Join":\["",\["wss:\/\/".*"\/live"\]\]\}$/,
    );
    expect(outputs[OUTPUTS.tokenSecretArn]!.Value).toEqual({
      Ref: resourceOf(t, 'AWS::SecretsManager::Secret', 'TokenSecret')[0],
    });
  });

  it('keeps the logical ids of stateful resources, so an update never replaces them', () => {
    const stateful = [
      'AWS::Kinesis::Stream',
      'AWS::DynamoDB::Table',
      'AWS::SQS::Queue',
      'AWS::SecretsManager::Secret',
    ]
      .flatMap((type) => idsOf(t, type))
      .sort();
    expect(stateful).toEqual([
      'DeadLettersQueue631681B1',
      'StreamsChunkStream303F6866',
      'StreamsInputStream77307595',
      'TablesConnectionsF6D675B1',
      'TablesCoordinationA381AA1F',
      'TablesItemText9B233394',
      'TablesItems7D42244B',
      'TokenSecret2AE840AF',
    ]);
  });

  it('retains stateful resources when the stack is deleted', () => {
    for (const type of [
      'AWS::Kinesis::Stream',
      'AWS::DynamoDB::Table',
      'AWS::SQS::Queue',
      'AWS::SecretsManager::Secret',
    ]) {
      for (const id of idsOf(t, type)) {
        expect(synth.template.toJSON().Resources[id].DeletionPolicy, `${type} ${id}`).toBe('Retain');
      }
    }
  });
});

describe('the stack with context settings', () => {
  let synth: Synth;
  let t: CfnTemplate;
  beforeAll(() => {
    synth = synthesize({
      inputShardCount: 2,
      chunkShardCount: '8',
      streamRetentionHours: 48,
      additionalModelIds: ['us.anthropic.claude-3-5-haiku-20241022-v1:0', 'amazon.nova-lite-v1:0'],
      modelPrices: { 'amazon.nova-lite-v1:0': { inputPer1k: 0.1, outputPer1k: 0.2 } },
      chunkParallelizationFactor: 7,
      chunkBatchingWindowSeconds: 1,
      inputRetryAttempts: 0,
      flushIntervalMs: 25,
      fanoutConcurrency: 64,
      generatorReservedConcurrency: 50,
      chunkIteratorAgeAlarmSeconds: 45,
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops',
      apiGatewayCloudWatchRole: false,
      removalPolicy: 'destroy',
      logLevel: 'DEBUG',
      corsAllowOrigins: 'https://dash.example.com',
      modelQuotas: {
        'anthropic.claude-3-5-haiku-20241022-v1:0': { requestsPerMinute: 120, tokensPerMinute: 40_000 },
      },
      modelFallbacks: '{"amazon.nova-lite-v1:0":["amazon.nova-micro-v1:0","eu.amazon.nova-pro-v1:0"]}',
      maxQuotaWaitSeconds: 600,
      consumerLagTargetMs: '2000',
      modelThrottlesAlarmThreshold: 25,
      flowControlAlarmPeriods: 5,
      queueWaitAlarmSeconds: 120,
    });
    t = synth.json;
  });

  it('passes quotas, fallbacks and flow-control limits to the generator only', () => {
    const env = fn(t, FUNCTIONS.generator).env;
    expect(JSON.parse(env[ENV.modelQuotas] as string)).toEqual({
      'anthropic.claude-3-5-haiku-20241022-v1:0': {
        requestsPerMinute: 120,
        tokensPerMinute: 40_000,
        outputBurndown: 1,
      },
    });
    expect(JSON.parse(env[ENV.modelFallbacks] as string)).toEqual({
      'amazon.nova-lite-v1:0': ['amazon.nova-micro-v1:0', 'eu.amazon.nova-pro-v1:0'],
    });
    expect(env).toMatchObject({ [ENV.maxQuotaWaitSeconds]: '600', [ENV.consumerLagTargetMs]: '2000' });
    for (const name of [FUNCTIONS.reassembler, FUNCTIONS.query, FUNCTIONS.message]) {
      expect(fn(t, name).env[ENV.modelQuotas]).toBeUndefined();
      expect(fn(t, name).env[ENV.modelFallbacks]).toBeUndefined();
    }
  });

  it('lets the generator invoke every fallback model, a profile only through itself', () => {
    const statements = statementsOf(t, fn(t, FUNCTIONS.generator).roleId).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('bedrock:')),
    );
    const text = JSON.stringify(statements);
    expect(text).toContain(':foundation-model/amazon.nova-micro-v1:0');
    expect(text).toContain(':inference-profile/eu.amazon.nova-pro-v1:0');
    const crossRegion = statements.filter((s) => JSON.stringify(s.Resource).includes(':bedrock:*::'));
    expect(
      crossRegion.map((s) => JSON.stringify(s.Resource).match(/foundation-model\/([^"]+)/)![1]).sort(),
    ).toEqual(['amazon.nova-pro-v1:0', 'anthropic.claude-3-5-haiku-20241022-v1:0']);
  });

  it('uses the flow-control alarm thresholds given', () => {
    const [, throttles] = resourceOf(t, 'AWS::CloudWatch::Alarm', 'MonitoringModelThrottles');
    expect(throttles.Properties).toMatchObject({ Threshold: 25, EvaluationPeriods: 5 });
    const [, released] = resourceOf(t, 'AWS::CloudWatch::Alarm', 'MonitoringWaitingReleased');
    expect(released.Properties).toMatchObject({ Threshold: 1, EvaluationPeriods: 5 });
    const [, waited] = resourceOf(t, 'AWS::CloudWatch::Alarm', 'MonitoringQueueWait');
    expect(waited.Properties).toMatchObject({ Threshold: 120_000, EvaluationPeriods: 1 });
  });

  it('provisions the shard counts given', () => {
    const stream = (prefix: string) => resourceOf(t, 'AWS::Kinesis::Stream', prefix)[1].Properties;
    expect(stream('StreamsInputStream')).toMatchObject({
      ShardCount: 2,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      RetentionPeriodHours: 48,
    });
    expect(stream('StreamsChunkStream')).toMatchObject({
      ShardCount: 8,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
    });
  });

  it('applies the mapping settings given', () => {
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn(t, FUNCTIONS.reassembler).id },
      ParallelizationFactor: 7,
      MaximumBatchingWindowInSeconds: 1,
    });
    synth.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn(t, FUNCTIONS.generator).id },
      MaximumRetryAttempts: 0,
    });
  });

  it('grants an inference profile and, through it only, its foundation model in any region', () => {
    const statements = statementsOf(t, fn(t, FUNCTIONS.generator).roleId).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('bedrock:')),
    );
    const text = JSON.stringify(statements);
    expect(text).toContain(':inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0');
    expect(text).toContain('::foundation-model/amazon.nova-lite-v1:0');
    // The fallbacks given in this context add a profile of their own (tested below).
    const crossRegion = statements.filter(
      (s) =>
        JSON.stringify(s.Resource).includes(':bedrock:*::') &&
        JSON.stringify(s.Resource).includes('anthropic'),
    );
    expect(crossRegion).toHaveLength(1);
    expect(JSON.stringify(crossRegion[0]!.Resource)).toContain(
      'foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
    );
    const profileArn = {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':bedrock:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
        ],
      ],
    };
    expect(crossRegion[0]!.Condition).toEqual({
      StringEquals: { 'bedrock:InferenceProfileArn': profileArn },
    });
    const direct = statements.find((s) => s.Condition === undefined)!;
    expect(direct.Condition).toBeUndefined();
    expect(direct.Resource).toContainEqual(profileArn);
  });

  it('passes prices and handler limits to the functions that use them', () => {
    const prices = JSON.stringify({ 'amazon.nova-lite-v1:0': { inputPer1k: 0.1, outputPer1k: 0.2 } });
    expect(fn(t, FUNCTIONS.generator).env).toMatchObject({
      [ENV.modelPrices]: prices,
      [ENV.flushIntervalMs]: '25',
    });
    expect(fn(t, FUNCTIONS.reassembler).env).toMatchObject({
      [ENV.modelPrices]: prices,
      [ENV.fanoutConcurrency]: '64',
    });
    expect(fn(t, FUNCTIONS.message).env[ENV.fanoutConcurrency]).toBe('64');
    expect(fn(t, FUNCTIONS.query).env[ENV.flushIntervalMs]).toBeUndefined();
    expect(fn(t, FUNCTIONS.generator).props.ReservedConcurrentExecutions).toBe(50);
    expect(fn(t, FUNCTIONS.generator).props.LoggingConfig).toMatchObject({ ApplicationLogLevel: 'DEBUG' });
  });

  it('notifies the alarm topic and uses the thresholds given', () => {
    const [, age] = resourceOf(t, 'AWS::CloudWatch::Alarm', 'MonitoringChunkIteratorAge');
    expect(age.Properties).toMatchObject({ Threshold: 45_000 });
    for (const id of idsOf(t, 'AWS::CloudWatch::Alarm')) {
      expect(t.Resources[id]!.Properties).toMatchObject({
        AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:ops'],
        OKActions: ['arn:aws:sns:eu-west-1:123456789012:ops'],
      });
    }
  });

  it('leaves the account logging role alone when told to, and deletes stateful resources with the stack', () => {
    expect(idsOf(t, 'AWS::ApiGateway::Account')).toEqual([]);
    for (const id of idsOf(t, 'AWS::DynamoDB::Table')) {
      expect(synth.template.toJSON().Resources[id].DeletionPolicy).toBe('Delete');
    }
  });

  it('allows browsers of the configured origins only', () => {
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['https://dash.example.com'],
        AllowMethods: ['GET'],
      }),
    });
  });
});

describe('the stack with an OIDC identity provider', () => {
  const issuer = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool';
  let synth: Synth;
  let t: CfnTemplate;
  beforeAll(() => {
    synth = synthesize({
      oidcIssuer: issuer,
      authAudience: 'client-123',
      oidcTenantClaim: 'custom:tenant',
      oidcScopeClaim: 'custom:scope',
    });
    t = synth.json;
  });

  it('puts API Gateway’s JWT authorizer (issuer, audience) in front of every query route', () => {
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: issuer, Audience: ['client-123'] },
    });
    const routes = Object.values(t.Resources).filter(
      (r) => r.Type === 'AWS::ApiGatewayV2::Route' && String(r.Properties?.RouteKey).startsWith('GET /items'),
    );
    expect(routes).toHaveLength(2);
    for (const route of routes) expect(route.Properties?.AuthorizationType).toBe('JWT');
  });

  it('configures the verifying functions for the issuer and gives them no access to the HMAC key', () => {
    for (const name of [FUNCTIONS.query, FUNCTIONS.connect]) {
      const { env, roleId } = fn(t, name);
      expect(env).toMatchObject({
        [ENV.authOidcIssuer]: issuer,
        [ENV.authAudience]: 'client-123',
        [ENV.authTenantClaim]: 'custom:tenant',
        [ENV.authScopeClaim]: 'custom:scope',
      });
      expect(env[ENV.authSecretArn]).toBeUndefined();
      expect(JSON.stringify(statementsOf(t, roleId))).not.toContain('secretsmanager:GetSecretValue');
    }
  });

  it('refuses a malformed issuer at synth', () => {
    expect(() => synthesize({ oidcIssuer: 'not a url' })).toThrow(/oidcIssuer/);
  });
});
