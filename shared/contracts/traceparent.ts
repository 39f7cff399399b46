import { z } from 'zod';

/**
 * A W3C Trace Context `traceparent` (version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex
 * flags>`, lowercase, ids not all zeros. Carried from a work item onto its chunk records and into
 * every log line about the item, so that one query follows the item from upstream to its viewers.
 */
export const Traceparent = z
  .string()
  .regex(
    /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/,
    'traceparent must be a W3C trace context: 00-<32 lowercase hex trace id>-<16 hex parent id>-<2 hex flags>, ids not all zeros',
  );
export type Traceparent = z.infer<typeof Traceparent>;
