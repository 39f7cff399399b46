/**
 * The model side of a scenario, on its own thread: the Bedrock stand-in behind the token tap, and
 * the meters in front of DynamoDB and Kinesis. In AWS the model is a remote service; here its CPU
 * time stays off the thread that runs the pipeline and the emulators.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { startBedrockStandIn } from '../../local/bedrock/index.js';
import { nowMs } from '../support/clock.js';
import type { ModelThreadData, ModelThreadReply, ModelThreadRequest } from './model-host.js';
import { startMeterProxy } from './meter.js';
import { startTapProxy } from './tap.js';

const port = parentPort;
if (!port) throw new Error('model-thread.ts runs as a worker thread');
const data = workerData as ModelThreadData;
const post = (message: ModelThreadReply) => port.postMessage(message);

const standIn = await startBedrockStandIn(data.model);
const tap = await startTapProxy({
  target: standIn.endpoint,
  onStream: (stream) => post({ type: 'tapped', stream }),
  onStreamEnd: (itemId) => post({ type: 'streamEnded', itemId }),
});
const dynamo = await startMeterProxy(data.dynamoTarget);
// Only timed items' delta records are decoded: the latency stages need no others.
const kinesis = await startMeterProxy(data.kinesisTarget, (itemId) => tap.isTapped(itemId));

port.on('message', (request: ModelThreadRequest) => {
  if (request.type === 'stats') {
    post({
      type: 'stats',
      id: request.id,
      stats: {
        at: nowMs(),
        standIn: standIn.stats(),
        dynamo: dynamo.stats(),
        kinesis: kinesis.stats(),
        elu: performance.eventLoopUtilization(),
      },
    });
    return;
  }
  if (request.type === 'deltaPuts') {
    post({ type: 'deltaPuts', id: request.id, puts: kinesis.deltaPuts(request.itemIds) });
    return;
  }
  void Promise.all([standIn.stop(), tap.stop(), dynamo.stop(), kinesis.stop()]).finally(() => {
    post({ type: 'stopped' });
    port.close();
  });
});

post({
  type: 'ready',
  endpoints: { bedrock: tap.endpoint, dynamodb: dynamo.endpoint, kinesis: kinesis.endpoint },
});
