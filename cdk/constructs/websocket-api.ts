import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IDependable } from 'constructs';
import { ENV } from '../../shared/env.js';
import { checkRange, HandlerFunction, type HandlerLogLevel, handlerEntry } from './handler-function.js';
import { grantItemActions, grantTableAccess } from './tables.js';
import { type TokenSecret, tokenVerification } from './token-secret.js';

/** A WebSocket stage that functions post to: what the reassembler needs of the viewers' API. */
export interface IViewerConnections {
  /** The stage's management API endpoint (WEBSOCKET_MANAGEMENT_ENDPOINT). */
  readonly managementEndpoint: string;
  /** Lets a function post to, inspect and close the stage's connections. */
  grantPostToConnections(grantee: iam.IGrantable): iam.Grant;
}

/** The client → server actions, selected by `$request.body.action`, all served by the message handler. */
export const WEBSOCKET_ACTION_ROUTES = ['subscribe', 'unsubscribe', 'cancel'] as const;

export interface ViewerWebSocketApiProps {
  readonly connectionsTable: dynamodb.ITable;
  /** Read for snapshots; cancel marks an item. */
  readonly itemsTable: dynamodb.ITable;
  /** Read for snapshots of long items. */
  readonly textTable: dynamodb.ITable;
  /** Verifies the `?token=` of `$connect` (HS256 tokens, when no OIDC issuer is configured). */
  readonly tokenSecret: TokenSecret;
  /**
   * Token verification settings (environment variable → value, see `cdk/context.ts` AUTH_SETTINGS).
   * @default - HS256 tokens signed with `tokenSecret`, the handlers' defaults
   */
  readonly authEnvironment?: Readonly<Record<string, string>>;
  /**
   * Name of the stage, the last segment of the WebSocket URL.
   * @default 'live'
   */
  readonly stageName?: string;
  /**
   * Steady-state messages per second the stage accepts.
   * @default 200
   */
  readonly throttleRatePerSecond?: number;
  /**
   * Messages the stage accepts in a burst above the steady rate.
   * @default 400
   */
  readonly throttleBurst?: number;
  /**
   * Memory of each route function, in MB.
   * @default 512
   */
  readonly memorySizeMb?: number;
  /**
   * Longest a route may run, in seconds (API Gateway waits at most 29).
   * @default 10
   */
  readonly timeoutSeconds?: number;
  /**
   * Further environment: delivery limits.
   * @default - the handlers' defaults
   */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: HandlerLogLevel;
  /**
   * What happens to the access log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Something the stage must be created after, e.g. the account's API Gateway logging role,
   * without which API Gateway refuses access logging on a WebSocket stage.
   * @default - none
   */
  readonly stageDependency?: IDependable;
}

/**
 * The viewers' API Gateway WebSocket API: `$connect` checks the token in the handler (API Gateway
 * authorizes only `$connect`, so every later frame runs on an authenticated connection),
 * `$disconnect`, and the `subscribe`, `unsubscribe`, `cancel` and `$default` routes, on one
 * auto-deployed, throttled stage with JSON access logs.
 */
export class ViewerWebSocketApi extends Construct implements IViewerConnections {
  readonly api: apigwv2.WebSocketApi;
  readonly stage: apigwv2.WebSocketStage;
  readonly connectHandler: HandlerFunction;
  readonly disconnectHandler: HandlerFunction;
  readonly messageHandler: HandlerFunction;
  readonly accessLogs: logs.ILogGroup;

  constructor(scope: Construct, id: string, props: ViewerWebSocketApiProps) {
    super(scope, id);
    const stageName = props.stageName ?? 'live';
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(stageName) || stageName.startsWith('$')) {
      throw new Error(
        `${this.node.path}: stageName must be 1–128 letters, digits, _ or -, got ${JSON.stringify(stageName)}`,
      );
    }
    const throttleRatePerSecond = props.throttleRatePerSecond ?? 200;
    const throttleBurst = props.throttleBurst ?? 400;
    checkRange(this, 'throttleRatePerSecond', throttleRatePerSecond, 1, 1_000_000);
    checkRange(this, 'throttleBurst', throttleBurst, 1, 1_000_000);
    const timeoutSeconds = props.timeoutSeconds ?? 10;
    checkRange(this, 'timeoutSeconds (API Gateway integration timeout)', timeoutSeconds, 1, 29);

    const entry = handlerEntry('consumers/viewers/handler.ts');
    const common = {
      entry,
      memorySizeMb: props.memorySizeMb,
      timeoutSeconds,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
    };
    this.connectHandler = new HandlerFunction(this, 'ConnectHandler', {
      ...common,
      handler: 'connect',
      description: 'WebSocket $connect: verifies the viewer token',
      environment: { [ENV.connectionsTable]: props.connectionsTable.tableName, ...props.environment },
    });
    for (const [name, value] of Object.entries(
      tokenVerification(this.connectHandler, props.tokenSecret, props.authEnvironment ?? {}),
    )) {
      this.connectHandler.function.addEnvironment(name, value);
    }
    this.disconnectHandler = new HandlerFunction(this, 'DisconnectHandler', {
      ...common,
      handler: 'disconnect',
      description: 'WebSocket $disconnect: removes the connection and its subscriptions',
      environment: { [ENV.connectionsTable]: props.connectionsTable.tableName, ...props.environment },
    });

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.accessLogs = accessLogs;

    this.api = new apigwv2.WebSocketApi(this, 'Api', {
      description: 'Live model output for viewers',
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: {
        integration: new WebSocketLambdaIntegration('Connect', this.connectHandler.function),
      },
      disconnectRouteOptions: {
        integration: new WebSocketLambdaIntegration('Disconnect', this.disconnectHandler.function),
      },
    });
    this.stage = new apigwv2.WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName,
      autoDeploy: true,
      throttle: { rateLimit: throttleRatePerSecond, burstLimit: throttleBurst },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTimeEpoch',
            connectionId: '$context.connectionId',
            eventType: '$context.eventType',
            routeKey: '$context.routeKey',
            status: '$context.status',
            sourceIp: '$context.identity.sourceIp',
            integrationLatencyMs: '$context.integrationLatency',
            integrationError: '$context.integration.error',
            error: '$context.error.message',
          }),
        ),
      },
    });
    if (props.stageDependency) this.stage.node.addDependency(props.stageDependency);

    // The message handler posts snapshots back to its caller, so it needs the stage's callback URL:
    // it is created after the stage, and its routes are added once it exists.
    this.messageHandler = new HandlerFunction(this, 'MessageHandler', {
      ...common,
      handler: 'message',
      description: 'WebSocket subscribe, unsubscribe, cancel and $default',
      environment: {
        [ENV.connectionsTable]: props.connectionsTable.tableName,
        [ENV.itemsTable]: props.itemsTable.tableName,
        [ENV.textTable]: props.textTable.tableName,
        [ENV.websocketManagementEndpoint]: this.managementEndpoint,
        ...props.environment,
      },
    });
    const messages = new WebSocketLambdaIntegration('Message', this.messageHandler.function);
    for (const routeKey of ['$default', ...WEBSOCKET_ACTION_ROUTES]) {
      this.api.addRoute(routeKey, { integration: messages });
    }

    // `$connect` counts the subject's connections (a Query) before storing one.
    grantTableAccess(this.connectHandler, props.connectionsTable, { read: true, write: true });
    grantTableAccess(this.disconnectHandler, props.connectionsTable, { read: true, write: true });
    grantTableAccess(this.messageHandler, props.connectionsTable, { read: true, write: true });
    // The item's head for snapshots (GetItem); cancel is one attribute update (UpdateItem); long
    // texts are read by a Query of the text table. Nothing else of either table.
    grantItemActions(this.messageHandler, props.itemsTable, ['GetItem', 'UpdateItem']);
    grantItemActions(this.messageHandler, props.textTable, ['Query']);
    // Replies only: POST to a connection, never GET or DELETE.
    this.grantPostReplies(this.messageHandler);

    for (const route of this.api.node.findAll().filter((c) => c instanceof apigwv2.CfnRoute)) {
      const routeKey = (route as apigwv2.CfnRoute).routeKey;
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          routeKey === '$connect'
            ? 'The $connect handler verifies the token (?token=, an HS256 JWT) and refuses the connection ' +
              'otherwise; browsers cannot send an Authorization header on a WebSocket upgrade.'
            : 'API Gateway authorizes WebSocket connections only at $connect; this route runs on a ' +
              'connection whose token was verified there.',
      });
    }
  }

  /** The wss:// URL viewers connect to (add `?token=`). */
  get url(): string {
    return this.stage.url;
  }

  get managementEndpoint(): string {
    return this.stage.callbackUrl;
  }

  grantPostToConnections(grantee: iam.IGrantable): iam.Grant {
    const grant = this.stage.grantManagementApiAccess(grantee);
    const principal = grantee.grantPrincipal;
    if (principal instanceof Construct) {
      // The management API names each connection in the resource path (…/@connections/{id}); ids
      // exist only at run time, so the grant is the stage's connections, which is all it can be.
      const stack = Stack.of(this);
      const apiLogicalId = stack.resolve(stack.getLogicalId(this.api.node.defaultChild as apigwv2.CfnApi));
      Validations.of(principal).acknowledge({
        id:
          'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:' +
          `<${apiLogicalId}>/${this.stage.stageName}/*/@connections/*]`,
        reason:
          'execute-api:ManageConnections on this stage only (granted by grantManagementApiAccess): connection ' +
          'ids are created at run time, so the resource can only be the stage\u2019s @connections path.',
      });
    }
    return grant;
  }

  /**
   * Lets a function only post to the stage's connections: `execute-api:ManageConnections` on
   * `POST /@connections/*` (no `GET` of a connection's details, no `DELETE` closing it).
   */
  grantPostReplies(grantee: iam.IGrantable): iam.Grant {
    return this.grantConnectionMethod(grantee, 'POST', 'replies; no GET and no DELETE');
  }

  /**
   * Lets a function only close the stage's connections: `execute-api:ManageConnections` on
   * `DELETE /@connections/*` (no `POST` to them, no `GET` of their details).
   */
  grantCloseConnections(grantee: iam.IGrantable): iam.Grant {
    return this.grantConnectionMethod(grantee, 'DELETE', 'closing only; no POST and no GET');
  }

  /** `execute-api:ManageConnections` for one method on this stage's `@connections/*`. */
  private grantConnectionMethod(grantee: iam.IGrantable, method: 'POST' | 'DELETE', what: string): iam.Grant {
    const stack = Stack.of(this);
    const resource = stack.formatArn({
      service: 'execute-api',
      resource: this.api.apiId,
      resourceName: `${this.stage.stageName}/${method}/@connections/*`,
    });
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:ManageConnections'],
      resourceArns: [resource],
    });
    const principal = grantee.grantPrincipal;
    if (principal instanceof Construct) {
      const apiLogicalId = stack.resolve(stack.getLogicalId(this.api.node.defaultChild as apigwv2.CfnApi));
      Validations.of(principal).acknowledge({
        id:
          'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:' +
          `<${apiLogicalId}>/${this.stage.stageName}/${method}/@connections/*]`,
        reason:
          `execute-api:ManageConnections for ${method} on this stage only: connection ids are created at run time, ` +
          `so the resource can only be the stage\u2019s @connections path (${what}).`,
      });
    }
    return grant;
  }

  /** A WebSocket API metric of this stage (namespace `AWS/ApiGateway`). */
  metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/ApiGateway',
      metricName,
      dimensionsMap: { ApiId: this.api.apiId, Stage: this.stage.stageName },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }
}
