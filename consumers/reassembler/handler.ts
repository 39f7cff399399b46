import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { sqsDeadLetterSink } from '../../shared/dead-letters.js';
import { addLambdaContext, createLogger, createMetrics } from '../../shared/telemetry.js';
import { createFanout } from '../viewers/fanout.js';
import { createReassemblerHandler } from './reassembler.js';

export { createReassemblerHandler, type ReassemblerDeps } from './reassembler.js';

type Handler = (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>;

const logger = createLogger('reassembler');
const fanoutLogger = createLogger('fanout');
let instance: Handler | undefined;

/** Dependencies are built once per cold start, on the first event. */
function build(): Handler {
  const config = loadConfig();
  const clients = createAwsClients(config);
  const metrics = createMetrics('reassembler');
  return createReassemblerHandler({
    config,
    clients,
    deadLetters: sqsDeadLetterSink(clients.sqs, config.deadLetterQueueUrl, logger),
    publisher: createFanout({ config, clients, logger: fanoutLogger, metrics }),
    logger,
    metrics,
  });
}

/** Chunk stream → DynamoDB items → viewers. */
export async function handler(
  event: KinesisStreamEvent,
  context?: Context,
): Promise<KinesisStreamBatchResponse> {
  addLambdaContext(context, logger, fanoutLogger);
  instance ??= build();
  return instance(event);
}
