import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { StallSweeper } from '../../../cdk/constructs/sweeper.js';
import { ENV } from '../../../shared/env.js';
import { ITEMS_BY_STATUS_INDEX } from '../../../shared/tables.js';
import { METRICS_NAMESPACE, SERVICE } from '../../../shared/telemetry.js';
import {
  actionsOf,
  type CfnTemplate,
  referencedIds,
  resourceOf,
  statementsOf,
  synthesize,
} from './synthesize.js';

/** The sweeper function of a template: its id, properties and role. */
function sweeperOf(t: CfnTemplate) {
  const [id, resource] = resourceOf(t, 'AWS::Lambda::Function', 'SweeperHandlerFunction');
  const props = resource.Properties as {
    Environment: { Variables: Record<string, unknown> };
    Role: { 'Fn::GetAtt': [string, string] };
    [key: string]: unknown;
  };
  return { id, props, env: props.Environment.Variables, roleId: props.Role['Fn::GetAtt'][0] };
}

describe('the stall sweeper in the stack with the default context', () => {
  let synth: ReturnType<typeof synthesize>;
  let t: CfnTemplate;
  beforeAll(() => {
    synth = synthesize();
    t = synth.json;
  });

  it('runs the sweeper handler every minute from an EventBridge schedule, without retrying a failed sweep', () => {
    // Prepare
    const sweeper = sweeperOf(t);
    // Assess
    expect(sweeper.props.Handler).toBe('index.handler');
    synth.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [sweeper.id, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }],
    });
    synth.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [sweeper.id, 'Arn'] },
    });
    // A sweep must end before the next one starts.
    expect(sweeper.props.Timeout).toBe(60);
  });

  it('names the items table and leaves the stall limit at the handler’s default', () => {
    const items = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesItems')[0];
    const { env } = sweeperOf(t);
    expect(env[ENV.itemsTable]).toEqual({ Ref: items });
    expect(env[ENV.stallLimitSeconds]).toBeUndefined();
  });

  it('may only query the byStatus index, and get and update items: no scan, no other table or index', () => {
    // Prepare
    const items = resourceOf(t, 'AWS::DynamoDB::Table', 'TablesItems')[0];
    const statements = statementsOf(t, sweeperOf(t).roleId).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('dynamodb:')),
    );
    // Act
    const grants = statements.map((s) => ({
      actions: actionsOf(s).sort(),
      resource: JSON.stringify(s.Resource),
    }));
    // Assess
    expect(grants).toHaveLength(2);
    const query = grants.find((g) => g.actions.includes('dynamodb:Query'))!;
    expect(query.actions).toEqual(['dynamodb:Query']);
    expect(query.resource).toContain(`/index/${ITEMS_BY_STATUS_INDEX}`);
    const items_ = grants.find((g) => !g.actions.includes('dynamodb:Query'))!;
    expect(items_.actions).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(items_.resource).not.toContain('/index/');
    for (const s of statements) expect([...referencedIds(s.Resource)]).toEqual([items]);
    // Nothing else: no stream, queue, Bedrock or management API.
    const others = statementsOf(t, sweeperOf(t).roleId)
      .flatMap(actionsOf)
      .filter((a) => !a.startsWith('dynamodb:') && !a.startsWith('logs:'));
    expect(others).toEqual([]);
  });

  it('alarms when the sweeper marks an item stalled, on the metric its handler emits', () => {
    const [, alarm] = resourceOf(t, 'AWS::CloudWatch::Alarm', 'MonitoringItemsStalled');
    const props = alarm.Properties as { Dimensions: Array<{ Name: string; Value: string }> };
    expect(props).toMatchObject({
      MetricName: 'ItemsStalled',
      Namespace: METRICS_NAMESPACE,
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    // createMetrics('sweeper') in consumers/sweeper/handler.ts puts these dimensions on every metric.
    expect(Object.fromEntries(props.Dimensions.map((d) => [d.Name, d.Value]))).toEqual({
      service: SERVICE,
      function: 'sweeper',
    });
  });
});

describe('the stall sweeper with context settings', () => {
  it('takes the sweep interval, the stall limit and the alarm threshold from context', () => {
    const { json, template } = synthesize({
      sweepIntervalMinutes: 5,
      stallLimitSeconds: 1800,
      itemsStalledAlarmThreshold: 3,
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    expect(sweeperOf(json).env[ENV.stallLimitSeconds]).toBe('1800');
    expect(sweeperOf(json).props.Timeout).toBe(300);
    const [, alarm] = resourceOf(json, 'AWS::CloudWatch::Alarm', 'MonitoringItemsStalled');
    expect(alarm.Properties).toMatchObject({ Threshold: 3 });
  });

  it.each([
    [{ sweepIntervalMinutes: 0 }, /"sweepIntervalMinutes"=0 is not valid: expected an integer from 1 to 60/],
    [{ stallLimitSeconds: 30 }, /stallLimitSeconds/],
    [{ itemsStalledAlarmThreshold: 0 }, /itemsStalledAlarmThreshold/],
  ])('refuses %j at synth', (context, message) => {
    expect(() => synthesize(context)).toThrow(message);
  });

  it('refuses an interval EventBridge or the function could not keep, naming the value', () => {
    const stack = new Stack(
      new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } }),
      'Test',
    );
    const table = new dynamodb.Table(stack, 'T', {
      partitionKey: { name: 'itemId', type: dynamodb.AttributeType.STRING },
    });
    expect(() => new StallSweeper(stack, 'S', { itemsTable: table, intervalMinutes: 61 })).toThrow(
      /S: intervalMinutes must be an integer from 1 to 60, got 61/,
    );
    new StallSweeper(stack, 'Ok', { itemsTable: table });
    Template.fromStack(stack).resourceCountIs('AWS::Events::Rule', 1);
  });
});
