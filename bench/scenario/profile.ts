import { Session } from 'node:inspector/promises';
import type { Profiler } from 'node:inspector';

/** Share of the main thread's busy samples spent in one part of the process. */
export interface ProfileShare {
  readonly part: string;
  /** Of the samples that were not idle, in [0, 1]. */
  readonly share: number;
}

/** Where the main thread's CPU went during a window. */
export interface CpuProfileSummary {
  readonly samples: number;
  /** Share of all samples that were idle (waiting for I/O or timers). */
  readonly idle: number;
  readonly parts: ProfileShare[];
  /** Functions with the most samples of their own (self time), with the part they belong to. */
  readonly hottest: Array<{ readonly fn: string; readonly part: string; readonly share: number }>;
}

/**
 * Parts of the process, by the file a frame runs in. A sample belongs to the innermost frame that
 * matches one (so `JSON.parse` called by dynalite counts as dynalite); samples with no such frame
 * are Node's own work (HTTP parsing, sockets, timers) or the garbage collector.
 */
const PARTS: ReadonlyArray<readonly [string, RegExp]> = [
  ['kinesalite (Kinesis emulator)', /\/node_modules\/kinesalite\//],
  ['dynalite (DynamoDB emulator)', /\/node_modules\/dynalite\//],
  [
    'emulator storage and helpers (memdown, memory-level, level*, async, big numbers)',
    /\/node_modules\/(memdown|memory-level|level|levelup|leveldown|abstract-level|abstract-leveldown|encoding-down|deferred-leveldown|level-[^/]+|subleveldown|functional-red-black-tree|lock|once|async|lazy|big\.js|bignumber\.js|cbor|buffer-crc32)\//,
  ],
  ['AWS SDK clients (@aws-sdk, @smithy)', /\/node_modules\/(@aws-sdk|@smithy|@aws-crypto|fast-xml-parser)\//],
  ['ws (gateway and viewers)', /\/node_modules\/ws\//],
  ['rxjs', /\/node_modules\/rxjs\//],
  ['zod', /\/node_modules\/zod\//],
  ['jose (tokens)', /\/node_modules\/jose\//],
  ['Powertools (logger, metrics)', /\/node_modules\/@aws-lambda-powertools\//],
  ['other packages', /\/node_modules\//],
  ['naive baseline (bench/naive)', /\/bench\/naive\//],
  ['bench driver and viewers (bench/)', /\/bench\//],
  ['handlers (producers/, consumers/, shared/)', /\/(producers|consumers|shared)\//],
  ['local stand-ins (local/: gateway, mappings)', /\/local\//],
];

/** Samples the main thread's CPU until `stop()` is called. */
export async function startCpuProfile(): Promise<{ stop(): Promise<CpuProfileSummary> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  // 1 ms: fine enough to rank the parts, coarse enough to cost little.
  await session.post('Profiler.setSamplingInterval', { interval: 1_000 });
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return summarize(profile);
    },
  };
}

function summarize(profile: Profiler.Profile): CpuProfileSummary {
  const parent = new Map<number, number>();
  const byId = new Map<number, Profiler.ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const partOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = partOf.get(id);
    if (known) return known;
    let part: string | undefined;
    for (let at: number | undefined = id; at !== undefined && !part; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame) break;
      if (frame.functionName === '(idle)') part = 'idle';
      else if (frame.functionName === '(garbage collector)') part = 'garbage collector';
      else part = PARTS.find(([, pattern]) => pattern.test(frame.url))?.[0];
    }
    const result = part ?? 'Node internals (HTTP, sockets, timers, JSON)';
    partOf.set(id, result);
    return result;
  };
  const counts = new Map<string, number>();
  const selfCounts = new Map<number, number>();
  for (const id of profile.samples ?? []) {
    const part = classify(id);
    counts.set(part, (counts.get(part) ?? 0) + 1);
    selfCounts.set(id, (selfCounts.get(id) ?? 0) + 1);
  }
  const byFunction = new Map<string, { part: string; n: number }>();
  for (const [id, n] of selfCounts) {
    const part = classify(id);
    if (part === 'idle') continue;
    const frame = byId.get(id)?.callFrame;
    const file = frame?.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/work\/[^/]+\//, '') ?? '';
    const fn =
      `${frame?.functionName || '(anonymous)'} ${file}${frame ? `:${frame.lineNumber + 1}` : ''}`.trim();
    const entry = byFunction.get(fn) ?? { part, n: 0 };
    entry.n += n;
    byFunction.set(fn, entry);
  }
  const samples = profile.samples?.length ?? 0;
  const idle = counts.get('idle') ?? 0;
  counts.delete('idle');
  const busy = samples - idle;
  return {
    samples,
    idle: samples > 0 ? idle / samples : 0,
    parts: [...counts]
      .map(([part, n]) => ({ part, share: busy > 0 ? n / busy : 0 }))
      .sort((a, b) => b.share - a.share),
    hottest: [...byFunction]
      .map(([fn, { part, n }]) => ({ fn, part, share: busy > 0 ? n / busy : 0 }))
      .sort((a, b) => b.share - a.share)
      .slice(0, 15),
  };
}
