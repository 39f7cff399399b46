export * from './chunk-record.js';
export * from './stack-file.js';
export * from './stored-item.js';
export * from './websocket.js';
export * from './work-item.js';
export * from './dead-letter.js';
export * from './traceparent.js';
