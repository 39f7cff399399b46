/** The model families the stand-in speaks, each with its own request body and stream shape. */
export type ModelFamily = 'anthropic' | 'llama' | 'nova';

/** A model id as the request named it, and what the stand-in makes of it. */
export interface ResolvedModel {
  /** The id exactly as sent (after URL decoding): a model id, an inference profile id or an ARN. */
  readonly requested: string;
  /** The foundation model behind it, e.g. `anthropic.claude-3-5-haiku-20241022-v1:0`. */
  readonly foundationModelId: string;
  readonly family: ModelFamily;
}

/** Why a model id was refused; the server answers it as a `ValidationException`. */
export class ModelIdError extends Error {
  override readonly name = 'ModelIdError';
}

/** Geography prefixes of cross-region inference profiles (`us.anthropic...`). */
const PROFILE_PREFIXES = ['us', 'eu', 'apac', 'us-gov', 'global', 'jp', 'au', 'ca'] as const;

const ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d*:(foundation-model|inference-profile)\/(.+)$/;

const FAMILIES: readonly { readonly prefix: string; readonly family: ModelFamily }[] = [
  { prefix: 'anthropic.', family: 'anthropic' },
  { prefix: 'meta.llama', family: 'llama' },
  { prefix: 'amazon.nova', family: 'nova' },
];

/**
 * Decodes the `{modelId}` path segment (the SDK percent-encodes it whole, so an ARN's `/` arrives as
 * `%2F`) and finds the model family from it. Accepts foundation model ids, cross-region inference
 * profile ids (`us.`, `eu.`, `apac.` ...) and ARNs of either. Throws a `ModelIdError` otherwise.
 */
export function resolveModelId(pathSegment: string): ResolvedModel {
  let requested: string;
  try {
    requested = decodeURIComponent(pathSegment);
  } catch {
    throw new ModelIdError(`The model identifier is not valid percent-encoding: "${pathSegment}".`);
  }
  if (requested.length === 0 || requested.length > 2048)
    throw new ModelIdError(`The model identifier must be 1 to 2048 characters, got ${requested.length}.`);
  const arn = ARN.exec(requested);
  let id = arn ? (arn[2] as string) : requested;
  const dot = id.indexOf('.');
  if (dot > 0 && (PROFILE_PREFIXES as readonly string[]).includes(id.slice(0, dot))) id = id.slice(dot + 1);
  const match = FAMILIES.find(({ prefix }) => id.startsWith(prefix));
  if (!match)
    throw new ModelIdError(
      `The provided model identifier is invalid: "${requested}". The local Bedrock stand-in serves ` +
        `${FAMILIES.map(({ prefix }) => `${prefix}*`).join(', ')} (optionally with an inference-profile ` +
        `prefix such as "us." or as an ARN).`,
    );
  return { requested, foundationModelId: id, family: match.family };
}
