import { Template } from 'aws-cdk-lib/assertions';
import { createApp } from '../../../cdk/app.js';

/**
 * Builds the app as `cdk synth` does (context → settings → stack, cdk-nag registered) and returns
 * its template. Bundling is skipped unless asked for: these assertions read the template, not the
 * code, and six esbuild runs would dominate the suite's time. CloudFormation's own template
 * validation is left to the bundled synth for the same reason.
 */
export function synthesize(
  context: Record<string, unknown> = {},
  options: { bundling?: boolean; outdir?: string } = {},
) {
  const { app, stack } = createApp({
    context: { ...(options.bundling ? {} : { 'aws:cdk:bundling-stacks': [] }), ...context },
    builtinCloudFormationValidation: options.bundling === true,
    outdir: options.outdir,
  });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as CfnTemplate };
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DependsOn?: string | string[];
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
  readonly Outputs: Record<string, { Value: unknown }>;
}

/** Logical ids of the resources of one type. */
export function idsOf(template: CfnTemplate, type: string): string[] {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id]) => id);
}

/** The one resource of a type whose logical id starts with `prefix`. */
export function resourceOf(template: CfnTemplate, type: string, prefix: string): [string, CfnResource] {
  const found = Object.entries(template.Resources).filter(
    ([id, r]) => r.Type === type && id.startsWith(prefix),
  );
  if (found.length !== 1) {
    throw new Error(
      `expected one ${type} with id ${prefix}*, found ${found.map(([id]) => id).join(', ') || 'none'}`,
    );
  }
  return found[0]!;
}

/** Every IAM statement attached to a role (by the role's logical id). */
export function statementsOf(template: CfnTemplate, roleId: string): Statement[] {
  return Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .filter((r) => (r.Properties!.Roles as Array<{ Ref: string }>).some((role) => role.Ref === roleId))
    .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
}

export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: unknown;
}

export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** The logical ids a value refers to (Ref and Fn::GetAtt), anywhere inside it. */
export function referencedIds(value: unknown): Set<string> {
  const ids = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [key, inner] of Object.entries(v)) {
        if (key === 'Ref' && typeof inner === 'string') ids.add(inner);
        else if (key === 'Fn::GetAtt' && Array.isArray(inner)) ids.add(String(inner[0]));
        else walk(inner);
      }
    }
  };
  walk(value);
  return ids;
}
