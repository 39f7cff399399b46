import { UnsupportedModelError } from '../errors.js';
import type { ModelFamily, ResolvedModel } from './types.js';

/** Geography prefixes of cross-region inference profiles (`us.anthropic...`). */
const PROFILE_PREFIXES = new Set(['us', 'eu', 'apac', 'us-gov', 'global', 'jp', 'au', 'ca']);

/** Resource types of Bedrock ARNs whose id names the foundation model. */
const ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d*:([a-z-]+)\/(.+)$/;
const NAMED_RESOURCES = new Set(['foundation-model', 'inference-profile']);

const FAMILIES: ReadonlyArray<{ readonly prefix: string; readonly family: ModelFamily }> = [
  { prefix: 'anthropic.claude', family: 'anthropic' },
  { prefix: 'meta.llama', family: 'llama' },
  { prefix: 'amazon.nova', family: 'nova' },
];

const SUPPORTED = `${FAMILIES.map((f) => `${f.prefix}*`).join(', ')}, optionally with an inference-profile prefix (us., eu., apac., ...) or as a foundation-model / inference-profile ARN`;

/**
 * Finds the model family and foundation model of a model id, a cross-region inference profile id
 * (`us.`, `eu.`, `apac.` ...) or an ARN of either. Throws `UnsupportedModelError` for any other id,
 * including application inference profile and provisioned model ARNs, whose family the id does not tell.
 */
export function resolveModel(modelId: string): ResolvedModel {
  let id = modelId;
  const arn = ARN.exec(modelId);
  if (arn) {
    const [, resource = '', rest = ''] = arn;
    if (!NAMED_RESOURCES.has(resource))
      throw new UnsupportedModelError(modelId, `a ${resource} ARN does not name its model; use ${SUPPORTED}`);
    id = rest;
  }
  const dot = id.indexOf('.');
  if (dot > 0 && PROFILE_PREFIXES.has(id.slice(0, dot))) id = id.slice(dot + 1);
  const match = FAMILIES.find(({ prefix }) => id.startsWith(prefix));
  if (!match) throw new UnsupportedModelError(modelId, `supported are ${SUPPORTED}`);
  return { requested: modelId, foundationModelId: id, family: match.family };
}
