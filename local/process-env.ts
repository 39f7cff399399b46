import { LOCAL_CREDENTIALS, LOCAL_REGION } from './stack.js';

/**
 * Prepares this process to run handlers against the local stand-ins: fixed dummy credentials (never
 * a real profile: every endpoint is on loopback), no CloudWatch EMF lines (the local stack counts in
 * process), handler logs at `logLevel` unless POWERTOOLS_LOG_LEVEL says otherwise, and no notice
 * that the SDK's 2027 releases need Node 22.
 */
export function useLocalProcessEnvironment(logLevel: 'WARN' | 'CRITICAL' = 'WARN'): void {
  process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = LOCAL_REGION;
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= logLevel;
}
