/**
 * An error answered in SQS's JSON-protocol shape: body `{"__type":"com.amazonaws.sqs#<name>",
 * "message"}` and header `x-amzn-query-error: <queryCode>;Sender`. The SDK maps the query code to
 * its typed exception (`QueueDoesNotExist`, `ReceiptHandleIsInvalid`, ...), so codes and statuses
 * here follow the client's model.
 */
export class SqsError extends Error {
  readonly type: string;
  readonly queryCode: string;
  readonly status: number;
  readonly fault: 'Sender' | 'Receiver';

  constructor(type: string, message: string, options: { queryCode?: string; status?: number } = {}) {
    super(message);
    this.name = 'SqsError';
    this.type = type;
    this.queryCode = options.queryCode ?? type;
    this.status = options.status ?? 400;
    this.fault = this.status >= 500 ? 'Receiver' : 'Sender';
  }
}

/** The errors this store answers, each with the code and status the SQS model gives it. */
export const sqsErrors = {
  queueDoesNotExist: () =>
    new SqsError('QueueDoesNotExist', 'The specified queue does not exist.', {
      queryCode: 'AWS.SimpleQueueService.NonExistentQueue',
    }),
  invalidAddress: (url: string) =>
    new SqsError('InvalidAddress', `The address ${url} is not valid for this endpoint.`, { status: 404 }),
  missingParameter: (name: string) =>
    new SqsError('MissingParameter', `The request must contain the parameter ${name}.`),
  invalidParameterValue: (message: string) => new SqsError('InvalidParameterValue', message),
  invalidAttributeName: (name: string) => new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`),
  invalidAttributeValue: (message: string) => new SqsError('InvalidAttributeValue', message),
  queueNameExists: (name: string) =>
    new SqsError('QueueNameExists', `A queue named ${name} already exists with different attributes.`, {
      queryCode: 'QueueAlreadyExists',
    }),
  receiptHandleIsInvalid: (handle: string) =>
    new SqsError(
      'ReceiptHandleIsInvalid',
      `The input receipt handle "${handle}" is not a valid receipt handle.`,
      {
        status: 404,
      },
    ),
  messageNotInflight: () =>
    new SqsError('MessageNotInflight', 'The message referred to is not in flight.', {
      queryCode: 'AWS.SimpleQueueService.MessageNotInflight',
    }),
  invalidMessageContents: (message: string) => new SqsError('InvalidMessageContents', message),
  emptyBatchRequest: () =>
    new SqsError('EmptyBatchRequest', 'There should be at least one entry in the request.', {
      queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest',
    }),
  tooManyEntriesInBatchRequest: (count: number) =>
    new SqsError(
      'TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are 10. You have sent ${count}.`,
      {
        queryCode: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
      },
    ),
  batchEntryIdsNotDistinct: (id: string) =>
    new SqsError('BatchEntryIdsNotDistinct', `Id ${id} repeated.`, {
      queryCode: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
    }),
  invalidBatchEntryId: (id: string) =>
    new SqsError(
      'InvalidBatchEntryId',
      `A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long. Got "${id}".`,
      { queryCode: 'AWS.SimpleQueueService.InvalidBatchEntryId' },
    ),
  batchRequestTooLong: (bytes: number, limit: number) =>
    new SqsError(
      'BatchRequestTooLong',
      `Batch requests cannot be longer than ${limit} bytes. You have sent ${bytes} bytes.`,
      {
        queryCode: 'AWS.SimpleQueueService.BatchRequestTooLong',
      },
    ),
  purgeQueueInProgress: (name: string, cooldownMs: number) =>
    new SqsError(
      'PurgeQueueInProgress',
      `Only one PurgeQueue operation on ${name} is allowed every ${cooldownMs / 1000} seconds.`,
      { queryCode: 'AWS.SimpleQueueService.PurgeQueueInProgress', status: 403 },
    ),
  unsupportedOperation: (message: string) =>
    new SqsError('UnsupportedOperation', message, {
      queryCode: 'AWS.SimpleQueueService.UnsupportedOperation',
    }),
  invalidAction: (action: string) =>
    new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`),
  serialization: (message: string) => new SqsError('SerializationException', message),
};
