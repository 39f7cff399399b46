import { MemoryQuotaStore } from '../../producers/generator/flow/memory-quota-store.js';

/** A `MemoryQuotaStore` that counts its conditional writes (each one a DynamoDB call in AWS). */
export class CountingQuotaStore extends MemoryQuotaStore {
  writes = 0;
  override increment(...args: Parameters<MemoryQuotaStore['increment']>) {
    this.writes++;
    return super.increment(...args);
  }
  override replace(...args: Parameters<MemoryQuotaStore['replace']>) {
    this.writes++;
    return super.replace(...args);
  }
}
