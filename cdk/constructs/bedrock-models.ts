import { ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** Geographic prefixes of Bedrock's system-defined cross-region inference profiles. */
const PROFILE_PREFIXES = ['us', 'us-gov', 'eu', 'apac', 'jp', 'au', 'ca', 'global'] as const;

const FOUNDATION_MODEL_ID = /^[a-z][a-z0-9-]*\.[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** A model id as Bedrock knows it. */
export type ModelRef =
  | { readonly kind: 'foundation-model'; readonly id: string }
  | { readonly kind: 'inference-profile'; readonly id: string; readonly foundationModelId: string };

/**
 * Classifies a model id: a foundation model (`anthropic.claude-3-5-haiku-20241022-v1:0`) or a
 * cross-region inference profile (`us.anthropic.claude-3-5-haiku-20241022-v1:0`). Throws for
 * anything else, naming the forms allowed.
 */
export function parseModelId(id: string): ModelRef {
  const prefix = PROFILE_PREFIXES.find((p) => id.startsWith(`${p}.`));
  const rest = prefix ? id.slice(prefix.length + 1) : id;
  if (!FOUNDATION_MODEL_ID.test(rest)) {
    throw new Error(
      `model id ${JSON.stringify(id)} is not valid: expected a Bedrock foundation model id ` +
        `(provider.model, e.g. anthropic.claude-3-5-haiku-20241022-v1:0) or a cross-region inference ` +
        `profile id (${PROFILE_PREFIXES.join('|')}.provider.model)`,
    );
  }
  return prefix
    ? { kind: 'inference-profile', id, foundationModelId: rest }
    : { kind: 'foundation-model', id };
}

export interface BedrockModelsProps {
  /** The models the system may invoke; the first is the default. */
  readonly modelIds: readonly string[];
}

/**
 * The Bedrock models the generator may call, as IAM resources and CloudWatch metrics. Holds no
 * AWS resource of its own.
 */
export class BedrockModels extends Construct {
  readonly models: readonly ModelRef[];

  constructor(scope: Construct, id: string, props: BedrockModelsProps) {
    super(scope, id);
    if (props.modelIds.length === 0)
      throw new Error(`${this.node.path}: modelIds must name at least one model, got []`);
    this.models = [...new Set(props.modelIds)].map(parseModelId);
  }

  /** The default model's id (DEFAULT_MODEL_ID). */
  get defaultModelId(): string {
    return this.models[0]!.id;
  }

  /**
   * Grants `bedrock:InvokeModel` and `bedrock:InvokeModelWithResponseStream` on exactly the configured
   * models. A foundation model is granted in this stack's region. An inference profile is granted
   * itself, plus its foundation model in whichever region the profile routes a request to, but only
   * when the request comes through that profile (the `bedrock:InferenceProfileArn` condition).
   */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const actions = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
    const stack = Stack.of(this);
    const foundationModelArn = (modelId: string, region?: string) =>
      stack.formatArn({
        service: 'bedrock',
        region,
        account: '',
        resource: 'foundation-model',
        resourceName: modelId,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
    const direct: string[] = [];
    const grants: iam.Grant[] = [];
    for (const model of this.models) {
      if (model.kind === 'foundation-model') {
        direct.push(foundationModelArn(model.id));
        continue;
      }
      const profileArn = stack.formatArn({
        service: 'bedrock',
        resource: 'inference-profile',
        resourceName: model.id,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
      direct.push(profileArn);
      if (grantee.grantPrincipal instanceof Construct) {
        Validations.of(grantee.grantPrincipal).acknowledge({
          id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${model.foundationModelId}]`,
          reason:
            `Inference profile ${model.id} routes each request to ${model.foundationModelId} in a region Bedrock ` +
            'chooses among the profile\u2019s destination regions, so the region is a wildcard; the statement ' +
            'applies only to requests made through that profile (condition bedrock:InferenceProfileArn).',
        });
      }
      grants.push(
        iam.Grant.addToPrincipal({
          grantee,
          actions,
          resourceArns: [foundationModelArn(model.foundationModelId, '*')],
          conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
        }),
      );
    }
    const main = iam.Grant.addToPrincipal({ grantee, actions, resourceArns: direct });
    return grants.reduce((all, g) => all.combine(g), main);
  }

  /** A Bedrock runtime metric (namespace `AWS/Bedrock`) of one model. */
  metric(metricName: string, modelId: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Bedrock',
      metricName,
      dimensionsMap: { ModelId: modelId },
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Invocations Bedrock throttled, summed over every configured model. */
  metricInvocationThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return this.sumOverModels('InvocationThrottles', props);
  }

  private sumOverModels(metricName: string, props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    const usingMetrics = Object.fromEntries(
      this.models.map((m, i) => [
        `m${i}`,
        this.metric(metricName, m.id, { statistic: 'Sum', period: props?.period }),
      ]),
    );
    return new cloudwatch.MathExpression({
      expression: Object.keys(usingMetrics)
        .map((k) => `FILL(${k}, 0)`)
        .join(' + '),
      usingMetrics,
      label: `${metricName} (all models)`,
      period: Duration.minutes(5),
      ...props,
    });
  }
}
