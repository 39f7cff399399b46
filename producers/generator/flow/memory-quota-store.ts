import { EMPTY_QUOTA_ROW, type IncrementCondition, type QuotaRow, type QuotaStore } from './quota-row.js';

/**
 * Quota rows in this process only: the same atomic, conditional operations as `DynamoQuotaStore`,
 * for one instance's own accounting (no fleet) and for simulations of many instances sharing a store.
 */
export class MemoryQuotaStore implements QuotaStore {
  private readonly rows = new Map<string, QuotaRow>();

  async read(model: string): Promise<QuotaRow | undefined> {
    return this.rows.get(model);
  }

  async increment(
    model: string,
    reqMs: number,
    tokMs: number,
    when: IncrementCondition,
  ): Promise<QuotaRow | undefined> {
    const row = this.rows.get(model);
    const within = (tat: number, limit: number) => tat >= when.now && tat <= limit;
    if (!row || !within(row.reqTat, when.reqLimit) || !within(row.tokTat, when.tokLimit)) return undefined;
    return this.put(model, { ...row, reqTat: row.reqTat + reqMs, tokTat: row.tokTat + tokMs });
  }

  async replace(
    model: string,
    seen: QuotaRow | undefined,
    reqTat: number,
    tokTat: number,
  ): Promise<QuotaRow | undefined> {
    const row = this.rows.get(model);
    if (seen ? !row || row.reqTat !== seen.reqTat || row.tokTat !== seen.tokTat : row) return undefined;
    return this.put(model, { ...(row ?? EMPTY_QUOTA_ROW), reqTat, tokTat });
  }

  async add(model: string, reqMs: number, tokMs: number): Promise<void> {
    const row = this.rows.get(model) ?? EMPTY_QUOTA_ROW;
    this.put(model, { ...row, reqTat: row.reqTat + reqMs, tokTat: row.tokTat + tokMs });
  }

  async decrease(model: string, factor: number, at: number, notAfter: number): Promise<QuotaRow | undefined> {
    const row = this.rows.get(model) ?? EMPTY_QUOTA_ROW;
    if (row.decreasedAt >= notAfter) return undefined;
    return this.put(model, { ...row, factor, decreasedAt: at });
  }

  async open(model: string, until: number): Promise<void> {
    const row = this.rows.get(model) ?? EMPTY_QUOTA_ROW;
    if (row.openUntil < until) this.put(model, { ...row, openUntil: until });
  }

  private put(model: string, row: QuotaRow): QuotaRow {
    this.rows.set(model, row);
    return row;
  }
}
