/**
 * The machine-readable contracts: OpenAPI 3.1 for the HTTP query API and AsyncAPI 3 for the
 * streams and the WebSocket protocol, generated from the zod schemas in `shared/contracts/`.
 */
import { asyncApiDocument } from './asyncapi.js';
import { openApiDocument } from './openapi.js';

export { asyncApiDocument } from './asyncapi.js';
export { CONTRACTS_VERSION, openApiDocument } from './openapi.js';

/** The command that rewrites the committed documents after a contract changed. */
export const REGENERATE_COMMAND = 'npm run specs';

/** Each committed document, by its path from the repository root, as its exact file text. */
export function specFiles(): Record<string, string> {
  const render = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`;
  return {
    'docs/openapi.json': render(openApiDocument()),
    'docs/asyncapi.json': render(asyncApiDocument()),
  };
}
