import os from 'node:os';
import type { CapacityResult, CapacitySpec } from './capacity.js';
import type { FlowMappings } from './naive/flow.js';
import { runInChild } from './scenario/in-child.js';
import type { Flow, ScenarioResult, ScenarioSpec } from './scenario/run-scenario.js';

/** Which question a scenario answers. */
export type ScenarioGroup = 'cost' | 'load' | 'length';

export interface PlannedScenario {
  readonly group: ScenarioGroup;
  readonly spec: ScenarioSpec;
}

export interface BenchOptions {
  /** A short run (smaller counts, shorter windows). */
  readonly quick: boolean;
  /** Keep only the scenarios this accepts (`name` is e.g. `load-100`). Default: all. */
  readonly only?: (scenario: PlannedScenario) => boolean;
  /** Skip the capacity probes. */
  readonly skipCapacity?: boolean;
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly os: string;
  readonly node: string;
  /** 1-minute load average when the run started and ended (other work on the machine). */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

export interface BenchResult {
  readonly mode: 'full' | 'quick';
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly machine: MachineInfo;
  readonly capacity: CapacityResult | undefined;
  readonly scenarios: ReadonlyArray<{ readonly group: ScenarioGroup; readonly result: ScenarioResult }>;
  /** Scenarios that did not produce figures, with why. */
  readonly failures: ReadonlyArray<{ readonly name: string; readonly flow: Flow; readonly error: string }>;
}

/** Same mapping settings for both flows; input batches large enough to start 1,000 generations at once. */
export const BENCH_MAPPINGS: FlowMappings = {
  input: { batchSize: 100, parallelizationFactor: 10 },
  chunks: { batchSize: 500, parallelizationFactor: 4 },
  inputShards: 2,
  chunkShards: 2,
};

/** A model at a realistic pace: 300 ms to the first token, then 80 tokens/s. */
export const BENCH_MODEL = { timeToFirstTokenMs: 300, tokensPerSecond: 80, tickMs: 25 } as const;

const FLOWS: readonly Flow[] = ['pipeline', 'naive'];

/**
 * The scenarios of a run, each once per flow (pipeline first, then the naive baseline):
 * - cost: a fixed number of items at low concurrency, two viewers per item, run until all end, at
 *   several output lengths: records, writes and messages per 1,000 tokens, latency without load;
 * - load: a closed loop at 10, 100 and 1,000 concurrent generations watched by two dashboards:
 *   sustained delivered tokens/s, latency under load, memory, CPU;
 * - length: the same closed loop at 100 concurrent generations with short and long outputs.
 */
export function plan(quick: boolean): { capacity: CapacitySpec; scenarios: PlannedScenario[] } {
  const common = { model: BENCH_MODEL, mappings: BENCH_MAPPINGS, profile: false } as const;
  const cost = (maxTokens: number, items: number): Omit<ScenarioSpec, 'flow'> => ({
    ...common,
    name: `cost-${maxTokens}`,
    concurrency: quick ? 3 : 5,
    maxTokens,
    items,
    warmupMs: 0,
    drainMs: quick ? 30_000 : 240_000,
    viewers: { mode: 'perItem', count: 2 },
    tapEvery: 1,
  });
  const load = (
    name: string,
    concurrency: number,
    maxTokens: number,
    profile: boolean,
  ): Omit<ScenarioSpec, 'flow'> => ({
    ...common,
    name,
    concurrency,
    maxTokens,
    durationMs: quick ? 6_000 : 25_000,
    warmupMs: quick ? 2_000 : 5_000,
    drainMs: quick ? 10_000 : 15_000,
    viewers: { mode: 'dashboards', count: 2 },
    // About 100 timed items in the window: admission runs a few dozen generations at a time
    // however many are offered, so a few hundred items start in a run, in the order offered.
    tapEvery: concurrency >= 100 ? 2 : 1,
    profile,
  });
  const specs: Array<{ group: ScenarioGroup; spec: Omit<ScenarioSpec, 'flow'> }> = quick
    ? [
        { group: 'cost', spec: cost(64, 6) },
        { group: 'cost', spec: cost(512, 4) },
        { group: 'load', spec: load('load-5', 5, 400, false) },
        { group: 'load', spec: load('load-25', 25, 400, false) },
        { group: 'length', spec: load('length-64-at-25', 25, 64, false) },
      ]
    : [
        { group: 'cost', spec: cost(64, 30) },
        { group: 'cost', spec: cost(512, 15) },
        { group: 'cost', spec: cost(2048, 5) },
        { group: 'load', spec: load('load-10', 10, 400, false) },
        // Both loads the overload figure compares are profiled: the profiler's own cost on the
        // busy main thread must not fall on one side of the ratio only.
        { group: 'load', spec: load('load-100', 100, 400, true) },
        { group: 'load', spec: load('load-1000', 1000, 400, true) },
        { group: 'length', spec: load('length-64-at-100', 100, 64, false) },
        { group: 'length', spec: load('length-2048-at-100', 100, 2048, false) },
      ];
  return {
    capacity: { probeMs: quick ? 1_000 : 5_000, recordBytes: 128, shards: BENCH_MAPPINGS.chunkShards },
    scenarios: specs.flatMap(({ group, spec }) => FLOWS.map((flow) => ({ group, spec: { ...spec, flow } }))),
  };
}

/**
 * Runs the capacity probes and every planned scenario, each in a fresh process, one after the
 * other (so they never compete for the CPU), reporting progress as it goes.
 */
export async function runBench(
  options: BenchOptions,
  progress: (line: string) => void,
): Promise<BenchResult> {
  const started = Date.now();
  const loadStart = os.loadavg()[0] ?? 0;
  const { capacity: capacitySpec, scenarios } = plan(options.quick);
  const selected = options.only ? scenarios.filter(options.only) : scenarios;
  const steps = selected.length + (options.skipCapacity ? 0 : 1);
  let step = 0;
  const tag = (label: string) => `[${++step}/${steps}] ${label}`;
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

  let capacity: CapacityResult | undefined;
  if (!options.skipCapacity) {
    const label = tag('emulator capacity');
    progress(`${label}: starting`);
    capacity = await runInChild<CapacityResult>(
      { kind: 'capacity', spec: capacitySpec },
      (line) => progress(`${label}: ${line}`),
      capacitySpec.probeMs * 3 + 60_000,
    );
    progress(
      `${label}: PutRecords ${fmt(capacity.putRecords.perSecond)} records/s, PutRecord ${fmt(capacity.putRecord.perSecond)}/s, ` +
        `UpdateItem ${fmt(capacity.updateItem.perSecond)}/s (${elapsed()})`,
    );
  }

  const results: Array<{ group: ScenarioGroup; result: ScenarioResult }> = [];
  const failures: Array<{ name: string; flow: Flow; error: string }> = [];
  for (const { group, spec } of selected) {
    const label = tag(`${spec.flow} ${spec.name}`);
    progress(`${label}: starting`);
    const budget = (spec.durationMs ?? 0) + spec.drainMs + 120_000;
    try {
      const result = await runInChild<ScenarioResult>(
        { kind: 'scenario', spec },
        (line) => progress(`${label}: ${line}`),
        budget,
      );
      results.push({ group, result });
      progress(
        `${label}: ${fmt(result.throughput.deliveredPerSecond)} tokens/s delivered, latency p50 ` +
          `${fmt(result.latencyMs.p50)} ms p95 ${fmt(result.latencyMs.p95)} ms, RSS ${fmt(result.memory.rssPeakMb)} MB (${elapsed()})`,
      );
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      failures.push({ name: spec.name, flow: spec.flow, error });
      progress(`${label}: FAILED: ${error.split('\n')[0]}`);
    }
  }

  const cpus = os.cpus();
  return {
    mode: options.quick ? 'quick' : 'full',
    startedAt: new Date(started).toISOString(),
    elapsedMs: Date.now() - started,
    machine: {
      cpu: cpus[0]?.model.trim() ?? 'unknown',
      cores: cpus.length,
      memoryGb: os.totalmem() / 1024 ** 3,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      loadAverage: { start: loadStart, end: os.loadavg()[0] ?? 0 },
    },
    capacity,
    scenarios: results,
    failures,
  };
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}
