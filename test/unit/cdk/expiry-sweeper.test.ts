import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../../shared/env.js';
import { CONNECTIONS_BY_EXPIRY_INDEX } from '../../../shared/tables.js';
import {
  actionsOf,
  type CfnTemplate,
  referencedIds,
  resourceOf,
  statementsOf,
  synthesize,
} from './synthesize.js';

/** The expiry sweep function of a template: its id, properties and role. */
function sweepOf(t: CfnTemplate) {
  const [id, resource] = resourceOf(t, 'AWS::Lambda::Function', 'ExpirySweeperHandlerFunction');
  const props = resource.Properties as {
    Environment: { Variables: Record<string, unknown> };
    Role: { 'Fn::GetAtt': [string, string] };
    [key: string]: unknown;
  };
  return { id, props, env: props.Environment.Variables, roleId: props.Role['Fn::GetAtt'][0] };
}

describe('the connection expiry sweep in the stack', () => {
  let synth: ReturnType<typeof synthesize>;
  let t: CfnTemplate;
  beforeAll(() => {
    synth = synthesize();
    t = synth.json;
  });

  it('runs sweepExpired every minute from an EventBridge schedule, without retrying a failed run', () => {
    const sweep = sweepOf(t);
    expect(sweep.props.Handler).toBe('index.sweepExpired');
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [sweep.id, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }],
    });
    // A run ends before the next one starts.
    expect(sweep.props.Timeout).toBeLessThan(60);
  });

  it('names the connections table and the stage’s management endpoint', () => {
    const connections = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesConnections')[0];
    const { env } = sweepOf(t);
    expect(env[ENV.connectionsTable]).toEqual({ Ref: connections });
    expect(JSON.stringify(env[ENV.websocketManagementEndpoint])).toContain('/live');
  });

  it('may only DELETE connections of the stage: no POST, no GET', () => {
    const apiId = resourceOf(t, 'AWS::ApiGatewayV2::Api', 'WebSocketApi')[0];
    const manage = statementsOf(t, sweepOf(t).roleId).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('execute-api:')),
    );
    expect(manage).toHaveLength(1);
    expect(actionsOf(manage[0]!)).toEqual(['execute-api:ManageConnections']);
    expect(JSON.stringify(manage[0]!.Resource)).toContain('/live/DELETE/@connections/*');
    expect(referencedIds(manage[0]!.Resource)).toContain(apiId);
  });

  it('may query the byExpiry index and query and batch-delete connection rows: no scan, no other table', () => {
    const connections = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesConnections')[0];
    const grants = statementsOf(t, sweepOf(t).roleId)
      .filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')))
      .map((s) => ({
        actions: actionsOf(s).sort(),
        resource: JSON.stringify(s.Resource),
        ids: referencedIds(s.Resource),
      }));
    expect(grants).toHaveLength(2);
    const index = grants.find((g) => g.resource.includes('/index/'))!;
    expect(index.actions).toEqual(['dynamodb:Query']);
    expect(index.resource).toContain(`/index/${CONNECTIONS_BY_EXPIRY_INDEX}`);
    const table = grants.find((g) => !g.resource.includes('/index/'))!;
    expect(table.actions).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:Query']);
    for (const g of grants) expect([...g.ids]).toEqual([connections]);
    const others = statementsOf(t, sweepOf(t).roleId)
      .flatMap(actionsOf)
      .filter((a) => !a.startsWith('dynamodb:') && !a.startsWith('execute-api:') && !a.startsWith('logs:'));
    expect(others).toEqual([]);
  });

  it('gives the connections table the sparse byExpiry index', () => {
    synth.template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: [
        {
          IndexName: CONNECTIONS_BY_EXPIRY_INDEX,
          KeySchema: [
            { AttributeName: 'expiryBucket', KeyType: 'HASH' },
            { AttributeName: 'pk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['tokenExpiresAt'] },
        },
      ],
    });
  });
});
