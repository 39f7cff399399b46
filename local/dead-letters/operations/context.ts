import { sqsErrors } from '../errors.js';
import type { MessageAttributeValue } from '../queue.js';
import type { QueueRegistry } from '../registry.js';

/** What every operation may use. */
export interface OperationContext {
  readonly queues: QueueRegistry;
  now(): number;
  /** Long polls wait at most this long, whatever `WaitTimeSeconds` asks (≤ 20 as in SQS). */
  readonly maxWaitTimeSeconds: number;
  readonly purgeCooldownMs: number;
  /** Aborted when the store stops: long polls answer at once. */
  readonly stopping: AbortSignal;
}

/** The decoded JSON body of a request. */
export type OperationInput = Record<string, unknown>;

/** One emulated SQS operation: decoded JSON input to JSON output, or an `SqsError`. */
export type Operation = (
  input: OperationInput,
  context: OperationContext,
) => Promise<Record<string, unknown>>;

/** A required string parameter. */
export function requiredString(input: OperationInput, name: string): string {
  const value = input[name];
  if (value === undefined || value === null) throw sqsErrors.missingParameter(name);
  if (typeof value !== 'string')
    throw sqsErrors.invalidParameterValue(
      `Value ${JSON.stringify(value)} for parameter ${name} is invalid. Reason: must be a string.`,
    );
  return value;
}

/** An optional integer parameter within [min, max]; SQS's wording for the range error. */
export function optionalInteger(
  input: OperationInput,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw sqsErrors.invalidParameterValue(
      `Value ${JSON.stringify(value)} for parameter ${name} is invalid. Reason: Must be between ${min} and ${max}, if provided.`,
    );
  return value;
}

/** An optional list of strings. */
export function optionalStrings(input: OperationInput, name: string): string[] | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw sqsErrors.invalidParameterValue(
      `Value for parameter ${name} is invalid. Reason: must be a list of strings.`,
    );
  return value as string[];
}

/** An optional string map (queue attributes, tags). */
export function optionalStringMap(input: OperationInput, name: string): Record<string, string> | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== 'object' ||
    Array.isArray(value) ||
    Object.values(value).some((v) => typeof v !== 'string')
  )
    throw sqsErrors.invalidParameterValue(
      `Value for parameter ${name} is invalid. Reason: must be a map of strings.`,
    );
  return value as Record<string, string>;
}

const ALLOWED_BODY = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

/** Checks a message body: non-empty, SQS's allowed characters, within the queue's size limit. */
export function checkBody(body: string, maximumMessageSize: number, attributesBytes = 0): void {
  if (body.length === 0)
    throw sqsErrors.invalidParameterValue('The request must contain a non-empty MessageBody.');
  if (!ALLOWED_BODY.test(body))
    throw sqsErrors.invalidMessageContents(
      'Invalid binary character in the message body; allowed: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.',
    );
  const bytes = Buffer.byteLength(body, 'utf8') + attributesBytes;
  if (bytes > maximumMessageSize)
    throw sqsErrors.invalidParameterValue(
      `One or more parameters are invalid. Reason: Message must be shorter than ${maximumMessageSize} bytes; it is ${bytes} bytes.`,
    );
}

const DATA_TYPE = /^(String|Number|Binary)(\..+)?$/;

/** Decodes and checks `MessageAttributes`; returns them and their size in bytes. */
export function messageAttributes(input: OperationInput): {
  attributes: Record<string, MessageAttributeValue> | undefined;
  bytes: number;
} {
  const value = input.MessageAttributes;
  if (value === undefined || value === null) return { attributes: undefined, bytes: 0 };
  if (typeof value !== 'object' || Array.isArray(value))
    throw sqsErrors.invalidParameterValue(
      'Value for parameter MessageAttributes is invalid. Reason: must be a map.',
    );
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > 10)
    throw sqsErrors.invalidParameterValue(
      `Number of message attributes [${entries.length}] exceeds the allowed maximum [10].`,
    );
  const attributes: Record<string, MessageAttributeValue> = {};
  let bytes = 0;
  for (const [name, raw] of entries) {
    const attr = raw as Partial<MessageAttributeValue> | null;
    if (!attr || typeof attr.DataType !== 'string' || !DATA_TYPE.test(attr.DataType))
      throw sqsErrors.invalidParameterValue(
        `The message attribute '${name}' has an invalid message attribute type; allowed: String, Number, Binary (optionally with a .suffix).`,
      );
    const isBinary = attr.DataType.startsWith('Binary');
    const payload = isBinary ? attr.BinaryValue : attr.StringValue;
    if (typeof payload !== 'string')
      throw sqsErrors.invalidParameterValue(
        `The message attribute '${name}' must contain a non-empty ${isBinary ? 'BinaryValue' : 'StringValue'}.`,
      );
    attributes[name] = isBinary
      ? { DataType: attr.DataType, BinaryValue: payload }
      : { DataType: attr.DataType, StringValue: payload };
    bytes +=
      Buffer.byteLength(name) +
      Buffer.byteLength(attr.DataType) +
      (isBinary ? Buffer.from(payload, 'base64').length : Buffer.byteLength(payload));
  }
  return { attributes, bytes };
}
