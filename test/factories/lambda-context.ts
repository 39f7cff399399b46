/** Lambda invocation contexts as the Lambda runtime passes them, for tests of the entry points. */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

/** A full Lambda `Context` for one invocation of `functionName`, with a fresh request id. */
export function invocationContext(functionName: string, remainingMs = 60_000): Context {
  const deadline = Date.now() + remainingMs;
  const fail = () => {
    throw new Error('callback-style completion is not used by these handlers');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: fail,
    fail,
    succeed: fail,
  };
}
