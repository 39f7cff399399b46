/**
 * Kinesis and DynamoDB emulators on a worker thread of their own (`startEmulatorThread`). In AWS
 * they are remote services; here their CPU time stays off the thread that runs the handlers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type EmulatorThreadData, type EmulatorThreadReply, startDynamo, startKinesis } from './emulators.js';

const port = parentPort;
if (!port) throw new Error('emulator-thread.ts runs as a worker thread');
const data = workerData as EmulatorThreadData;
const post = (reply: EmulatorThreadReply) => port.postMessage(reply);

try {
  const [kinesis, dynamodb] = await Promise.all([startKinesis(data.kinesis), startDynamo(data.dynamodb)]);
  port.once('message', () => {
    void Promise.allSettled([kinesis.stop(), dynamodb.stop()]).then(() => {
      post({ type: 'stopped' });
      port.close();
    });
  });
  post({ type: 'ready', kinesis: kinesis.port, dynamodb: dynamodb.port });
} catch (err) {
  post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  port.close();
}
