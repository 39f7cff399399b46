import type { KinesisClient, PutRecordsCommand, PutRecordsCommandOutput } from '@aws-sdk/client-kinesis';
import { describe, expect, it, vi } from 'vitest';
import { createChunkSink, invocationSink } from '../../../../producers/generator/chunk-sink.js';
import { ChunkStreamError } from '../../../../producers/generator/errors.js';
import type { ChunkRecord } from '../../../../shared/contracts/chunk-record.js';

type Answer = (entries: number) => PutRecordsCommandOutput | Error;

/** A Kinesis client that answers PutRecords from a script and remembers every call's records. */
function scriptedKinesis(answer: Answer) {
  const calls: string[][] = [];
  const client = {
    send: async (command: PutRecordsCommand) => {
      const records = command.input.Records ?? [];
      calls.push(records.map((r) => JSON.parse(Buffer.from(r.Data as Uint8Array).toString()).text as string));
      const result = answer(records.length);
      if (result instanceof Error) throw result;
      return result;
    },
  };
  return { client: client as unknown as KinesisClient, calls };
}

const ok = (n: number): PutRecordsCommandOutput => ({
  $metadata: {},
  FailedRecordCount: 0,
  Records: Array.from({ length: n }, (_, i) => ({ SequenceNumber: String(i), ShardId: 'shardId-0' })),
});

const delta = (text: string): ChunkRecord => ({
  v: 1,
  itemId: `item-${text}`,
  attempt: 1,
  seq: 0,
  type: 'delta',
  text,
});

const sinkFor = (client: KinesisClient, maxAttempts = 5, extra = {}) =>
  createChunkSink({
    kinesis: client,
    streamName: 'chunks',
    maxPutsInFlight: 1,
    putTimeoutMs: 1_000,
    retry: { maxAttempts, baseDelayMs: 1, maxDelayMs: 2 },
    ...extra,
  });

describe('chunk sink', () => {
  it('puts records arriving together in one PutRecords call, at most 500 per call', async () => {
    const { client, calls } = scriptedKinesis(ok);
    const sink = sinkFor(client);
    await Promise.all(Array.from({ length: 1_200 }, (_, i) => sink.put(delta(String(i)))));
    await sink.close();
    expect(calls.map((c) => c.length)).toEqual([500, 500, 200]);
    expect(calls.flat()).toEqual(Array.from({ length: 1_200 }, (_, i) => String(i)));
  });

  it('tries a record rejected inside a call again until it is accepted', async () => {
    let call = 0;
    const { client, calls } = scriptedKinesis((n) => {
      call++;
      if (call > 1) return ok(n);
      const out = ok(n);
      out.FailedRecordCount = 1;
      out.Records![1] = {
        ErrorCode: 'ProvisionedThroughputExceededException',
        ErrorMessage: 'Rate exceeded',
      };
      return out;
    });
    const sink = sinkFor(client);
    await Promise.all(['a', 'b', 'c'].map((t) => sink.put(delta(t))));
    await sink.close();
    expect(calls).toEqual([['a', 'b', 'c'], ['b']]);
  });

  it('shares calls among the invocations of an instance; each closes on its own records and gives up at its own time', async () => {
    const clock = { t: 1_000 };
    const answers: Array<(out: PutRecordsCommandOutput | Error) => void> = [];
    const calls: string[][] = [];
    const client = {
      send: (command: PutRecordsCommand) => {
        calls.push(
          (command.input.Records ?? []).map(
            (r) => JSON.parse(Buffer.from(r.Data as Uint8Array).toString()).text,
          ),
        );
        return new Promise((resolve, reject) =>
          answers.push((out) => (out instanceof Error ? reject(out) : resolve(out))),
        );
      },
    } as unknown as KinesisClient;
    const shared = sinkFor(client, 5, { maxPutsInFlight: 2, now: () => clock.t });
    const early = invocationSink(shared, 1_050, () => clock.t);
    const late = invocationSink(shared, 60_000, () => clock.t);
    const a = early.put(delta('a'));
    const b = late.put(delta('b'));
    await vi.waitFor(() => expect(calls).toEqual([['a', 'b']]));
    // The call is throttled after 100 ms: past the early invocation's time, not the late one's.
    clock.t += 100;
    answers[0]?.(
      Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }),
    );
    // Given up by the retry (its time is past) or, if that comes later, by its invocation's timer.
    await expect(a).rejects.toThrow(/time budget ran out/);
    await early.close();
    await vi.waitFor(() => expect(calls).toEqual([['a', 'b'], ['b']]));
    let lateClosed = false;
    const closing = late.close().then(() => (lateClosed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lateClosed).toBe(false);
    answers[1]?.(ok(1));
    await b;
    await closing;
    await shared.close();
  });

  it("gives up a record still in flight at its invocation's time without cutting short the call for the others", async () => {
    const answers: Array<(out: PutRecordsCommandOutput) => void> = [];
    const calls: string[][] = [];
    const client = {
      send: (command: PutRecordsCommand, options?: { abortSignal?: AbortSignal }) => {
        calls.push(
          (command.input.Records ?? []).map(
            (r) => JSON.parse(Buffer.from(r.Data as Uint8Array).toString()).text,
          ),
        );
        return new Promise((resolve, reject) => {
          answers.push(resolve);
          options?.abortSignal?.addEventListener('abort', () => reject(options.abortSignal?.reason));
        });
      },
    } as unknown as KinesisClient;
    const shared = sinkFor(client, 5, { putTimeoutMs: 10_000 });
    const early = invocationSink(shared, Date.now() + 50);
    const late = invocationSink(shared, Date.now() + 60_000);
    const a = early.put(delta('a'));
    const b = late.put(delta('b'));
    await vi.waitFor(() => expect(calls).toEqual([['a', 'b']]));
    await expect(a).rejects.toThrow(/still in flight when the time budget ran out/);
    await early.close();
    answers[0]?.(ok(2));
    await b;
    expect(calls).toHaveLength(1);
    await late.close();
    await shared.close();
  });

  it('tries a throttled call again as a whole', async () => {
    let call = 0;
    const { client, calls } = scriptedKinesis((n) =>
      ++call === 1
        ? Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' })
        : ok(n),
    );
    const sink = sinkFor(client);
    await Promise.all(['a', 'b'].map((t) => sink.put(delta(t))));
    await sink.close();
    // Each record waits its own jittered delay, so the second tries may go in one call or two.
    expect(calls[0]).toEqual(['a', 'b']);
    expect(calls.slice(1).flat().sort()).toEqual(['a', 'b']);
  });

  it('rejects a record after its bounded tries, naming it and the last failure', async () => {
    const { client, calls } = scriptedKinesis(() =>
      Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }),
    );
    const sink = sinkFor(client, 3);
    const put = sink.put(delta('x'));
    await expect(put).rejects.toThrow(ChunkStreamError);
    await expect(put).rejects.toThrow(
      /item-x\/1\/0 was not accepted by stream chunks after 3 tries: .*Rate exceeded/,
    );
    expect(calls).toHaveLength(3);
    await sink.close();
  });

  it('rejects at once on a failure that trying again cannot fix', async () => {
    const { client, calls } = scriptedKinesis(() =>
      Object.assign(new Error('Stream chunks not found'), { name: 'ResourceNotFoundException' }),
    );
    const sink = sinkFor(client);
    await expect(sink.put(delta('x'))).rejects.toThrow(
      /PutRecords to chunks failed: ResourceNotFoundException/,
    );
    expect(calls).toHaveLength(1);
    await sink.close();
  });

  it('stops trying when the time budget has run out', async () => {
    const { client, calls } = scriptedKinesis(() =>
      Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }),
    );
    const sink = sinkFor(client, 100, { giveUpAt: Date.now() - 1 });
    await expect(sink.put(delta('x'))).rejects.toThrow(/before the time budget ran out/);
    expect(calls.length).toBeLessThanOrEqual(1);
    await sink.close();
  });
});
