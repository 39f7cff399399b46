import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE } from '../../shared/telemetry.js';

/** The repository root: esbuild bundles from here, with its lock file. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The Lambda runtime of every handler. */
export const HANDLER_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** Absolute path of a handler's entry file, given relative to the repository root. */
export function handlerEntry(relativePath: string): string {
  return fileURLToPath(new URL(relativePath, new URL('../../', import.meta.url)));
}

export type HandlerLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface HandlerFunctionProps {
  /** Entry file of the handler, an absolute path (see `handlerEntry`). */
  readonly entry: string;
  /**
   * Name of the handler's export.
   * @default 'handler'
   */
  readonly handler?: string;
  readonly description: string;
  /**
   * Memory of the function, in MB (128–10,240).
   * @default 512
   */
  readonly memorySizeMb?: number;
  /**
   * Longest an invocation may run, in seconds (1–900).
   * @default 10
   */
  readonly timeoutSeconds?: number;
  /**
   * Concurrency reserved for the function, which also caps it.
   * @default - unreserved
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Environment variables (names from `shared/env.ts`).
   * @default - only the Powertools settings
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Lowest level of the application's log lines that are kept.
   * @default 'INFO'
   */
  readonly logLevel?: HandlerLogLevel;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * One handler as a Lambda function: bundled on this machine with esbuild into a single ES module
 * (no Docker), on the latest Node runtime, with a log group and a role of its own. The role starts
 * with permission to write its own logs only (no AWS managed policy); every other permission is
 * granted by the construct that wires the function to a resource.
 */
export class HandlerFunction extends Construct implements iam.IGrantable {
  readonly function: NodejsFunction;
  readonly role: iam.IRole;
  readonly logGroup: logs.ILogGroup;
  readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    super(scope, id);
    const memorySizeMb = props.memorySizeMb ?? 512;
    const timeoutSeconds = props.timeoutSeconds ?? 10;
    checkRange(this, 'memorySizeMb', memorySizeMb, 128, 10_240);
    checkRange(this, 'timeoutSeconds', timeoutSeconds, 1, 900);
    if (props.reservedConcurrentExecutions !== undefined) {
      checkRange(this, 'reservedConcurrentExecutions', props.reservedConcurrentExecutions, 1, 100_000);
    }
    const logLevel = props.logLevel ?? 'INFO';

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (function role)`,
    });
    this.logGroup.grantWrite(role);
    this.role = role;
    this.grantPrincipal = role;

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: props.handler ?? 'handler',
      description: props.description,
      runtime: HANDLER_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: memorySizeMb,
      timeout: Duration.seconds(timeoutSeconds),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel[logLevel],
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}package-lock.json`,
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: logLevel,
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        // No Docker on developer machines or in CI: esbuild from node_modules does the bundling.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        // The handlers are tested against the SDK versions in the lock file, not the runtime's.
        bundleAwsSDK: true,
        minify: true,
        sourceMap: true,
        // Some bundled CommonJS dependencies call require() for Node built-ins, which an ES module lacks.
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
  }
}

/** Throws at once when a numeric prop is out of range, naming the value given and the range allowed. */
export function checkRange(scope: Construct, name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${scope.node.path}: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}
