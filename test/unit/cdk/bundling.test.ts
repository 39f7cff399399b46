import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CfnTemplate, idsOf, synthesize } from './synthesize.js';

/**
 * The one synth with real bundling, as `cdk synth` does it: local esbuild (no Docker), every check
 * on, into a scratch cloud assembly.
 */
describe('the bundled synth', () => {
  let outdir: string;
  let template: CfnTemplate;
  beforeAll(() => {
    outdir = mkdtempSync(join(tmpdir(), 'cdk-synth-'));
    template = synthesize({}, { bundling: true, outdir }).json;
    // Seven functions, five esbuild runs: slow on a busy two-core machine.
  }, 180_000);
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  const functions = () =>
    idsOf(template, 'AWS::Lambda::Function').map((id) => {
      const p = template.Resources[id]!.Properties as { Handler: string; Code: { S3Key: string } };
      const [file, exportName] = p.Handler.split('.') as [string, string];
      return { id, file, exportName, assetDir: join(outdir, `asset.${p.Code.S3Key.replace(/\.zip$/, '')}`) };
    });

  it('bundles every handler locally into one ES module exporting the handler the function names', () => {
    const all = functions();
    expect(all).toHaveLength(8);
    // The three WebSocket routes and the expiry sweep share one entry, hence one bundle.
    const bundles = new Map<string, string[]>();
    for (const f of all) {
      const entry = join(f.assetDir, `${f.file}.mjs`);
      expect(existsSync(entry), `${f.id}: ${entry}`).toBe(true);
      expect(existsSync(`${entry}.map`), `${f.id}: source map`).toBe(true);
      bundles.set(entry, [...(bundles.get(entry) ?? []), f.exportName]);
    }
    expect(bundles.size).toBe(5);
    for (const [entry, names] of bundles) {
      // Loaded by plain Node, as Lambda does: proves valid ESM whose CommonJS dependencies resolve
      // (the require shim), without the test runner's transforms in between.
      const exported = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(pathToFileURL(entry).href)});` +
            `process.stdout.write(JSON.stringify(${JSON.stringify(names)}.map((n) => typeof m[n])));`,
        ],
        { encoding: 'utf8' },
      );
      expect(JSON.parse(exported), `${entry} exports ${names.join(', ')}`).toEqual(
        names.map(() => 'function'),
      );
    }
  });

  it('bundles the AWS SDK into the code instead of relying on the runtime’s copy', () => {
    const reassembler = functions().find((f) => f.id.startsWith('ReassemblerHandlerFunction'))!;
    expect(readFileSync(join(reassembler.assetDir, 'index.mjs'), 'utf8')).toContain('DynamoDBClient');
  });

  it('passes CloudFormation’s own template validation without a warning', () => {
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ violations: unknown[] }>;
    };
    expect(report.pluginReports.flatMap((r) => r.violations)).toEqual([]);
  });
});
