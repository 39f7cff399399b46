import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from '@asyncapi/parser';
import { validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningHttpApi, startHttpApi } from '../../../local/http-api.js';
import { ChunkRecord } from '../../../shared/contracts/chunk-record.js';
import { StoredItem } from '../../../shared/contracts/stored-item.js';
import { ServerMessage } from '../../../shared/contracts/websocket.js';
import { WorkItem } from '../../../shared/contracts/work-item.js';
import {
  asyncApiDocument,
  openApiDocument,
  REGENERATE_COMMAND,
  specFiles,
} from '../../../shared/specs/index.js';

const root = join(import.meta.dirname, '..', '..', '..');
type Doc = { components: { schemas: Record<string, { properties?: Record<string, unknown> }> } };
const schemasOf = (doc: unknown) => (doc as Doc).components.schemas;
const propertiesOf = (doc: unknown, name: string) => Object.keys(schemasOf(doc)[name]?.properties ?? {});

describe('contract documents (docs/openapi.json, docs/asyncapi.json)', () => {
  it.each(Object.entries(specFiles()))('%s is what the zod contracts generate', (path, generated) => {
    // Prepare
    let committed = '';
    try {
      committed = readFileSync(join(root, path), 'utf8');
    } catch {
      // a missing file fails below, with the same advice
    }
    // Assess
    expect(
      committed === generated,
      `${path} does not match the zod schemas in shared/contracts: run \`${REGENERATE_COMMAND}\` and commit the result`,
    ).toBe(true);
  });

  it('the OpenAPI document is valid OpenAPI 3.1', async () => {
    const result = await validate(structuredClone(openApiDocument()) as Parameters<typeof validate>[0]);
    expect(result, JSON.stringify(result)).toMatchObject({ valid: true, warnings: [] });
    expect((openApiDocument() as { openapi: string }).openapi).toBe('3.1.0');
  });

  it('the AsyncAPI document is valid AsyncAPI 3 with no warnings', async () => {
    const diagnostics = await new Parser().validate(JSON.stringify(asyncApiDocument()));
    // Severity 0 is an error, 1 a warning; 2 (information) and 3 (hint) are advice.
    const problems = diagnostics
      .filter((d) => d.severity <= 1)
      .map((d) => `${d.path.join('/')}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('every field a contract validates is in the documents', () => {
    expect(propertiesOf(openApiDocument(), 'StoredItem')).toEqual(Object.keys(StoredItem.shape));
    expect(propertiesOf(asyncApiDocument(), 'WorkItem')).toEqual(Object.keys(WorkItem.shape));
    for (const variant of ChunkRecord.options) {
      const name = `${variant.shape.type.value.replace(/^./, (c) => c.toUpperCase())}Record`;
      expect(propertiesOf(asyncApiDocument(), name), name).toEqual(Object.keys(variant.shape));
    }
    for (const variant of ServerMessage.options) {
      const name = `${variant.shape.type.value.replace(/^./, (c) => c.toUpperCase())}Message`;
      expect(propertiesOf(asyncApiDocument(), name), name).toEqual(Object.keys(variant.shape));
    }
  });

  it('a work item needs exactly one of prompt or messages, in the document as in zod', () => {
    expect(schemasOf(asyncApiDocument()).WorkItem).toMatchObject({
      oneOf: [{ required: ['prompt'] }, { required: ['messages'] }],
    });
  });

  describe('served by the local HTTP API', () => {
    let api: RunningHttpApi;
    beforeAll(async () => {
      api = await startHttpApi({
        handler: async () => ({
          statusCode: 404,
          body: '{"error":{"code":"route_not_found","message":"x"}}',
        }),
      });
    });
    afterAll(() => api.stop());

    it.each([
      ['/openapi.json', 'docs/openapi.json'],
      ['/asyncapi.json', 'docs/asyncapi.json'],
    ])('GET %s answers the committed %s, without a token', async (path, file) => {
      const response = await fetch(`${api.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.text()).toBe(specFiles()[file]);
    });
  });
});
