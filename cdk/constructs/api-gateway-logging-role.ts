import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/**
 * The account's API Gateway CloudWatch Logs role. API Gateway writes WebSocket access logs only
 * when the account (per region) names such a role; HTTP APIs do not need it. It is an account-wide
 * setting: the role is retained when the stack is deleted so the setting never points at a role
 * that no longer exists. Leave it out (context `apiGatewayCloudWatchRole: false`) where the account
 * already has one.
 */
export class ApiGatewayLoggingRole extends Construct {
  readonly role: iam.IRole;
  readonly account: apigateway.CfnAccount;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: 'Lets API Gateway write access and execution logs of this account to CloudWatch Logs',
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs'),
      ],
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        'The AWS managed policy AWS documents for the account-level API Gateway logging role; API Gateway ' +
        'creates a log group per API stage, so the role cannot be scoped to log groups known in advance.',
    });
    this.role = role;
    this.account = new apigateway.CfnAccount(this, 'Account', { cloudWatchRoleArn: role.roleArn });
    this.account.applyRemovalPolicy(RemovalPolicy.RETAIN);
  }
}
