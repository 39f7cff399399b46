#!/usr/bin/env node
/**
 * Synthesizes the app into `cdk.out` without the CDK CLI: `npx tsx cdk/synth.ts [-c key=value ...]`.
 *
 * It runs the same app with the same context the CLI would pass (`cdk.json`, then
 * `cdk.context.json`, then `-c`), bundles every function with esbuild, and fails on any cdk-nag
 * finding. It exists because a CLI can only read a cloud assembly whose schema it knows: use it where
 * the installed `aws-cdk` is older than `aws-cdk-lib` (see cdk/README.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createApp } from './app.js';
import { REPO_ROOT } from './constructs/handler-function.js';

/** Parses `-c key=value` / `--context key=value` arguments. */
function contextArgs(args: readonly string[]): Record<string, string> {
  const context: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg !== '-c' && arg !== '--context')
      throw new Error(`unknown argument ${JSON.stringify(arg)}: expected -c key=value`);
    const pair = args[++i];
    const at = pair?.indexOf('=') ?? -1;
    if (!pair || at <= 0) throw new Error(`${arg} needs key=value, got ${JSON.stringify(pair)}`);
    context[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return context;
}

function readContextFile(
  file: string,
  pick: (json: Record<string, unknown>) => unknown,
): Record<string, unknown> {
  if (!existsSync(file)) return {};
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return (pick(json) ?? {}) as Record<string, unknown>;
}

const started = Date.now();
const context = {
  ...readContextFile(join(REPO_ROOT, 'cdk.json'), (json) => json.context),
  ...readContextFile(join(REPO_ROOT, 'cdk.context.json'), (json) => json),
  ...contextArgs(process.argv.slice(2)),
};
const outdir = join(REPO_ROOT, 'cdk.out');
const { app, stack } = createApp({ context, outdir });
const assembly = app.synth();
const template = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, unknown> };
process.stdout.write(
  `synthesized ${stack.stackName}: ${Object.keys(template.Resources).length} resources in ` +
    `${((Date.now() - started) / 1000).toFixed(1)} s -> ${outdir}\n`,
);
