import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TABLES, type TableSpec, TTL_ATTRIBUTE } from '../../shared/tables.js';

export interface StreamsTablesProps {
  /**
   * What happens to the tables when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The items, item-text, connections and coordination tables, created from the same specification
 * as the local stack's (`shared/tables.ts`): on demand, TTL on `expiresAt`, point-in-time recovery
 * on every table but coordination.
 */
export class StreamsTables extends Construct {
  readonly items: dynamodb.ITable;
  readonly text: dynamodb.ITable;
  readonly connections: dynamodb.ITable;
  /** Rows every producer and consumer instance shares: model quota buckets and consumer lag. */
  readonly coordination: dynamodb.ITable;

  constructor(scope: Construct, id: string, props: StreamsTablesProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.items = tableFromSpec(this, 'Items', TABLES.items, removalPolicy);
    this.text = tableFromSpec(this, 'ItemText', TABLES.text, removalPolicy);
    this.connections = tableFromSpec(this, 'Connections', TABLES.connections, removalPolicy);
    // Soft state only: a quota row refills to its limit within a minute and the lag row is
    // rewritten by the next consumer batch, so a restored copy would be stale on arrival and a lost
    // table costs at most one minute of looser rate limiting. Recovery would only add cost.
    const coordination = tableFromSpec(this, 'Coordination', TABLES.coordination, removalPolicy, false);
    Validations.of(coordination).acknowledge({
      id: 'AwsSolutions-DDB3',
      reason:
        'The coordination table holds soft state (model quota buckets that refill within a minute, the ' +
        'consumer lag rewritten every batch); a point-in-time copy would be stale when restored.',
    });
    this.coordination = coordination;
  }
}

function tableFromSpec(
  scope: Construct,
  id: string,
  spec: TableSpec,
  removalPolicy: RemovalPolicy,
  pointInTimeRecovery = true,
) {
  const key = (name: string) => ({ name, type: dynamodb.AttributeType.STRING });
  const table = new dynamodb.Table(scope, id, {
    partitionKey: key(spec.partitionKey),
    sortKey: spec.sortKey ? key(spec.sortKey) : undefined,
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    timeToLiveAttribute: TTL_ATTRIBUTE,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: pointInTimeRecovery },
    removalPolicy,
  });
  for (const index of spec.indexes ?? []) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: key(index.partitionKey),
      sortKey: key(index.sortKey),
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...index.projected],
    });
  }
  return table;
}

/** What a function may do with a table. */
export interface TableAccess {
  /** GetItem, BatchGetItem, Query, ConditionCheckItem. */
  readonly read?: boolean;
  /** PutItem, UpdateItem, DeleteItem, BatchWriteItem. */
  readonly write?: boolean;
  /**
   * Indexes the function may query, by name (requires `read`).
   * @default - none
   */
  readonly indexes?: readonly string[];
}

const READ_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
];
const WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
];

/**
 * Grants item-level access to one table and, by name, to its indexes: no `Scan`, no table
 * management, no stream reads, and no `index/*` wildcard, unlike the broader `grantReadData()`.
 */
export function grantTableAccess(
  grantee: iam.IGrantable,
  table: dynamodb.ITable,
  access: TableAccess,
): iam.Grant {
  if (!access.read && !access.write) {
    throw new Error(
      `grantTableAccess: give read and/or write for table ${table.node.path}, got ${JSON.stringify(access)}`,
    );
  }
  if (access.indexes?.length && !access.read) {
    throw new Error(
      `grantTableAccess: indexes ${access.indexes.join(', ')} of ${table.node.path} need read access`,
    );
  }
  const actions = [...(access.read ? READ_ACTIONS : []), ...(access.write ? WRITE_ACTIONS : [])];
  const resourceArns = [
    table.tableArn,
    ...(access.indexes ?? []).map((name) => `${table.tableArn}/index/${name}`),
  ];
  return iam.Grant.addToPrincipal({ grantee, actions, resourceArns });
}

/** Item-level DynamoDB actions a function may be granted one by one. */
export type ItemAction = 'GetItem' | 'UpdateItem' | 'Query' | 'BatchWriteItem';

/**
 * Grants exactly the named item actions on one table (no index, no scan): for a function that
 * touches a table through one or two calls, where `grantTableAccess`'s read or write sets would
 * give more than it uses.
 */
export function grantItemActions(
  grantee: iam.IGrantable,
  table: dynamodb.ITable,
  actions: readonly ItemAction[],
): iam.Grant {
  if (actions.length === 0) {
    throw new Error(`grantItemActions: name at least one action for table ${table.node.path}`);
  }
  return iam.Grant.addToPrincipal({
    grantee,
    actions: [...new Set(actions)].map((a) => `dynamodb:${a}`),
    resourceArns: [table.tableArn],
  });
}

/**
 * Grants `Query` on one index of a table, by name, and nothing on the table itself: for a function
 * that finds its rows through one index and reads them with `grantItemActions`.
 */
export function grantIndexQuery(
  grantee: iam.IGrantable,
  table: dynamodb.ITable,
  indexName: string,
): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:Query'],
    resourceArns: [`${table.tableArn}/index/${indexName}`],
  });
}
