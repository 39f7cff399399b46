import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { sqsDeadLetterSink } from '../../shared/dead-letters.js';
import { addLambdaContext, createLogger, createMetrics } from '../../shared/telemetry.js';
import { createGeneratorHandler, type GeneratorHandler } from './generator.js';

export {
  createGeneratorHandler,
  DEFAULT_TUNING,
  type GeneratorDeps,
  type GeneratorHandler,
  type GeneratorTuning,
  type InvocationContext,
} from './generator.js';
export type { GeneratorStats } from './stats.js';

const FUNCTION_NAME = 'producer';
const logger = createLogger(FUNCTION_NAME);
let instance: GeneratorHandler | undefined;

/** Configuration, clients and metrics, built once per cold start (on the first event). */
function build(): GeneratorHandler {
  const config = loadConfig(process.env);
  const clients = createAwsClients(config);
  return createGeneratorHandler({
    config,
    clients,
    deadLetters: sqsDeadLetterSink(clients.sqs, config.deadLetterQueueUrl, logger),
    logger,
    metrics: createMetrics(FUNCTION_NAME),
  });
}

/** Input stream → Bedrock → chunk stream (Lambda entry point, Kinesis event source mapping). */
export async function handler(
  event: KinesisStreamEvent,
  context?: Context,
): Promise<KinesisStreamBatchResponse> {
  addLambdaContext(context, logger);
  instance ??= build();
  return instance(event, context);
}
