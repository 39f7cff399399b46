import { plan } from './run-bench.js';
import { runInChild } from './scenario/in-child.js';
import type { ScenarioResult } from './scenario/run-scenario.js';
const [name, flow = 'pipeline'] = process.argv.slice(2);
const planned = plan(false).scenarios.find((s) => s.spec.name === name && s.spec.flow === flow);
if (!planned) throw new Error('no such scenario');
const r = await runInChild<ScenarioResult>(
  { kind: 'scenario', spec: { ...planned.spec, profile: process.env.PROFILE === '1' } },
  (l) => console.error(l),
  600_000,
);
const p = (x: { p50: number | null; p95: number | null; p99: number | null }) =>
  `${x.p50?.toFixed(0)}/${x.p95?.toFixed(0)}/${x.p99?.toFixed(0)}`;
const st = r.latencyStagesMs;
console.log(
  JSON.stringify({
    name,
    streams: r.throughput.modelStreams.toFixed(1),
    offered: r.throughput.offeredPerSecond.toFixed(0),
    delivered: r.throughput.deliveredPerSecond.toFixed(0),
    latency: p(r.latencyMs),
    censored: r.latencyCensored,
    timed: r.latencyItems,
    main: r.cpu.mainThread.toFixed(2),
    stages: [p(st.toRecord), p(st.toKinesis), p(st.toViewer)],
    items: r.items,
    msgs: r.viewers.messagesByType,
    calls: r.callsPerSecond,
    cpu: r.cpu,
    notes: r.notes,
    reconnects: r.viewers.reconnects,
    viewersN: r.viewers,
    profile: r.profile ? { parts: r.profile.parts, hottest: r.profile.hottest.slice(0, 25) } : undefined,
  }),
);
