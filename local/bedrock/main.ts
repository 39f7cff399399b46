import { parseArgs } from 'node:util';
import { describe } from '../../shared/errors.js';
import { parseFaults } from './faults.js';
import { parseQuotas } from './quotas.js';
import { type BedrockStandInOptions, standInOptionsFromEnv, startBedrockStandIn } from './server.js';

/**
 * Runs the Bedrock stand-in on its own:
 * `tsx local/bedrock/main.ts [--port N] [--ttft MS] [--tps N] [--faults JSON] [--quotas JSON]`.
 * Flags override `BEDROCK_TIME_TO_FIRST_TOKEN_MS`, `BEDROCK_TOKENS_PER_SECOND`, `BEDROCK_FAULTS` and
 * `BEDROCK_QUOTAS`.
 * Prints `endpoint=<url>` once listening; stops on SIGINT/SIGTERM.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      ttft: { type: 'string' },
      tps: { type: 'string' },
      faults: { type: 'string' },
      quotas: { type: 'string' },
    },
  });
  const number = (flag: string, raw: string | undefined) => {
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (raw.trim() === '' || Number.isNaN(value)) throw new Error(`--${flag} must be a number, got "${raw}"`);
    return value;
  };
  const fromFlags: BedrockStandInOptions = {
    port: number('port', values.port),
    timeToFirstTokenMs: number('ttft', values.ttft),
    tokensPerSecond: number('tps', values.tps),
    faults: values.faults === undefined ? undefined : parseFaults(parseJsonFlag('faults', values.faults)),
    quotas: values.quotas === undefined ? undefined : parseQuotas(parseJsonFlag('quotas', values.quotas)),
  };
  const options: BedrockStandInOptions = {
    ...standInOptionsFromEnv(process.env),
    ...Object.fromEntries(Object.entries(fromFlags).filter(([, v]) => v !== undefined)),
  };
  const standIn = await startBedrockStandIn(options);
  console.log(`endpoint=${standIn.endpoint}`);
  console.log(
    `timing=${JSON.stringify(standIn.timing())} faults=${JSON.stringify(standIn.faults())} ` +
      `quotas=${JSON.stringify(standIn.quotas().limits)}`,
  );
  const stop = () => {
    standIn.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(describe(err));
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function parseJsonFlag(flag: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new Error(`--${flag} must be JSON, got ${JSON.stringify(raw)} (${describe(err)})`);
  }
}

main().catch((err: unknown) => {
  console.error(describe(err));
  process.exit(1);
});
