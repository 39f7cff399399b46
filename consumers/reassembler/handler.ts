import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { sqsDeadLetterSink } from '../../shared/dead-letters.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { createFanout } from '../viewers/fanout.js';
import { createReassemblerHandler } from './reassembler.js';

export { createReassemblerHandler, type ReassemblerDeps } from './reassembler.js';

type Handler = (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>;

let instance: Handler | undefined;

/** Dependencies are built once per cold start, on the first event. */
function build(): Handler {
  const config = loadConfig();
  const clients = createAwsClients(config);
  const logger = createLogger('reassembler');
  const metrics = createMetrics('reassembler');
  return createReassemblerHandler({
    config,
    clients,
    deadLetters: sqsDeadLetterSink(clients.sqs, config.deadLetterQueueUrl, logger),
    publisher: createFanout({ config, clients, logger: createLogger('fanout'), metrics }),
    logger,
    metrics,
  });
}

/** Chunk stream → DynamoDB items → viewers. */
export async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  instance ??= build();
  return instance(event);
}
