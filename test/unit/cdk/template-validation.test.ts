import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CfnResource } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../cdk/app.js';

/**
 * `cdk synth` validates the template against CloudFormation's resource schemas and fails on any
 * finding (the bundled synth in bundling.test.ts shows the real template passes).
 */
describe('CloudFormation validation at synth', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'cdk-validate-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('fails the synth on a property CloudFormation does not know and on a value of the wrong type', () => {
    // Prepare: the real app, with two mistakes slipped into the input stream's template
    const { app, stack } = createApp({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: true,
      outdir,
    });
    const stream = stack.node
      .findAll()
      .find(
        (c): c is CfnResource => c instanceof CfnResource && c.cfnResourceType === 'AWS::Kinesis::Stream',
      );
    if (!stream) throw new Error('the stack has no Kinesis stream');
    stream.addPropertyOverride('ShardCountt', 2);
    stream.addPropertyOverride('RetentionPeriodHours', 'a day');
    // Act / Assess
    let failure = '';
    try {
      app.synth();
    } catch (err) {
      failure = String(err);
    }
    expect(failure).toMatch(/ERROR ShardCountt: Additional properties are not allowed/);
    expect(failure).toMatch(/ERROR RetentionPeriodHours: 'a day' is not of type 'integer'/);
  });
});
