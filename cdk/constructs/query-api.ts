import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_AUDIENCE } from '../../shared/auth.js';
import { ENV } from '../../shared/env.js';
import { ITEMS_BY_TENANT_STATUS_INDEX } from '../../shared/tables.js';
import { checkRange, HandlerFunction, type HandlerLogLevel, handlerEntry } from './handler-function.js';
import { grantTableAccess } from './tables.js';
import { type TokenSecret, tokenVerification, usesOidc } from './token-secret.js';

export interface ItemsQueryApiProps {
  readonly itemsTable: dynamodb.ITable;
  readonly textTable: dynamodb.ITable;
  /** Verifies `Authorization: Bearer <token>` (HS256 tokens, when no OIDC issuer is configured). */
  readonly tokenSecret: TokenSecret;
  /**
   * Token verification settings (environment variable → value, see `cdk/context.ts` AUTH_SETTINGS).
   * With an OIDC issuer the routes also get API Gateway's JWT authorizer.
   * @default - HS256 tokens signed with `tokenSecret`, the handlers' defaults
   */
  readonly authEnvironment?: Readonly<Record<string, string>>;
  /**
   * Steady-state requests per second the API accepts.
   * @default 200
   */
  readonly throttleRatePerSecond?: number;
  /**
   * Requests the API accepts in a burst above the steady rate.
   * @default 400
   */
  readonly throttleBurst?: number;
  /**
   * Origins a browser may call the API from (the dashboard page).
   * @default ['*'] — any origin: the API uses bearer tokens, never cookies
   */
  readonly corsAllowOrigins?: readonly string[];
  /**
   * Memory of the function, in MB.
   * @default 512
   */
  readonly memorySizeMb?: number;
  /**
   * Longest a request may run, in seconds (API Gateway waits at most 29).
   * @default 10
   */
  readonly timeoutSeconds?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: HandlerLogLevel;
  /**
   * What happens to the access log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** The query routes, `GET /items/{itemId}` and `GET /items`. */
export const QUERY_ROUTES = ['/items/{itemId}', '/items'] as const;

/**
 * The HTTP query API (`consumers/query-api/handler.ts`) on its `$default` stage, throttled, with JSON
 * access logs. The bearer token is verified in the handler, which answers 401 in the API's own
 * error shape.
 */
export class ItemsQueryApi extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly handler: HandlerFunction;
  readonly accessLogs: logs.ILogGroup;

  constructor(scope: Construct, id: string, props: ItemsQueryApiProps) {
    super(scope, id);
    const throttleRatePerSecond = props.throttleRatePerSecond ?? 200;
    const throttleBurst = props.throttleBurst ?? 400;
    checkRange(this, 'throttleRatePerSecond', throttleRatePerSecond, 1, 1_000_000);
    checkRange(this, 'throttleBurst', throttleBurst, 1, 1_000_000);
    const timeoutSeconds = props.timeoutSeconds ?? 10;
    checkRange(this, 'timeoutSeconds (API Gateway integration timeout)', timeoutSeconds, 1, 29);

    this.handler = new HandlerFunction(this, 'Handler', {
      entry: handlerEntry('consumers/query-api/handler.ts'),
      description: 'HTTP API: GET /items/{itemId}, GET /items',
      memorySizeMb: props.memorySizeMb,
      timeoutSeconds,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      environment: {
        [ENV.itemsTable]: props.itemsTable.tableName,
        [ENV.textTable]: props.textTable.tableName,
      },
    });
    const authEnvironment = props.authEnvironment ?? {};
    for (const [name, value] of Object.entries(
      tokenVerification(this.handler, props.tokenSecret, authEnvironment),
    )) {
      this.handler.function.addEnvironment(name, value);
    }
    grantTableAccess(this.handler, props.itemsTable, {
      read: true,
      indexes: [ITEMS_BY_TENANT_STATUS_INDEX],
    });
    grantTableAccess(this.handler, props.textTable, { read: true });

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Stored model output by item id',
      createDefaultStage: false,
      corsPreflight: {
        allowOrigins: [...(props.corsAllowOrigins ?? ['*'])],
        allowMethods: [apigwv2.CorsHttpMethod.GET],
        allowHeaders: ['Authorization', 'Content-Type'],
        maxAge: Duration.hours(1),
      },
    });
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.accessLogs = accessLogs;
    this.stage = new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: throttleRatePerSecond, burstLimit: throttleBurst },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTimeEpoch',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            sourceIp: '$context.identity.sourceIp',
            responseLength: '$context.responseLength',
            integrationLatencyMs: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    const integration = new HttpLambdaIntegration('Items', this.handler.function);
    // With an identity provider, API Gateway checks issuer, audience, signature and expiry before any
    // invocation; the handler still verifies every claim (tenant, scope, lifetime) itself.
    const authorizer = usesOidc(authEnvironment)
      ? new HttpJwtAuthorizer('Jwt', authEnvironment[ENV.authOidcIssuer] as string, {
          jwtAudience: [authEnvironment[ENV.authAudience] ?? DEFAULT_AUDIENCE],
        })
      : undefined;
    for (const path of QUERY_ROUTES) {
      const [route] = this.api.addRoutes({
        path,
        methods: [apigwv2.HttpMethod.GET],
        integration,
        ...(authorizer ? { authorizer } : {}),
      });
      if (!authorizer) {
        Validations.of(route!).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            'The handler verifies the bearer token (an HS256 JWT signed with the stack\u2019s token secret) ' +
            'on every request and answers 401 in the API\u2019s JSON error shape; a Lambda authorizer ' +
            'would repeat the same check in a second invocation.',
        });
      }
    }
  }

  /** The API's base URL, without a trailing slash (append `/items/{itemId}`). */
  get url(): string {
    return this.api.apiEndpoint;
  }

  /** Requests answered with 4xx (sum over the period). */
  metricClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricClientError({ statistic: 'Sum', ...props });
  }

  /** Requests answered with 5xx (sum over the period). */
  metricServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricServerError({ statistic: 'Sum', ...props });
  }
}
