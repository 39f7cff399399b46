#!/usr/bin/env node
/**
 * The CDK app: `npx cdk synth | deploy` (cdk.json runs this file). Settings come from context only
 * (`cdk.json`, or `-c key=value`); see cdk/README.md.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readSettings } from './context.js';
import { KinesisModelStreamsStack } from './stack.js';

/**
 * Turns the findings of CDK's built-in CloudFormation validation (every resource checked against
 * CloudFormation's resource schemas at synth, the checks cfn-lint makes on types and properties)
 * from warnings into errors, so an invalid property fails `cdk synth` before anyone deploys.
 */
export const VALIDATION_FINDINGS_ARE_ERRORS = '@aws-cdk/core:validateAgainstDefaultRules';

/**
 * Builds the app: validated settings, the stack (environment-agnostic: no account or region lookups,
 * so it synthesizes offline), and cdk-nag's AWS Solutions checks, which fail the synth on any
 * finding that is not acknowledged with a reason in the code.
 */
export function createApp(props?: AppProps): { app: App; stack: KinesisModelStreamsStack } {
  const app = new App({ ...props, context: { [VALIDATION_FINDINGS_ARE_ERRORS]: true, ...props?.context } });
  const settings = readSettings(app.node.getAllContext());
  const stack = new KinesisModelStreamsStack(app, settings.stackName, {
    settings,
    description:
      'Bedrock model output streamed through Kinesis and reassembled exactly once (kinesis-model-streams)',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  createApp();
}
