import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('client library in browsers', () => {
  it('bundles for the browser with nothing from Node', async () => {
    // Act: a Node built-in anywhere in the import graph fails a browser build.
    const result = await build({
      entryPoints: ['shared/client/index.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    // Assess
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0]?.text ?? '';
    expect(code).toContain('createStreamsClient');
    expect(code).not.toMatch(/from ["']node:|require\(["'](node:)?(fs|net|http|crypto)["']\)/);
  });
});
