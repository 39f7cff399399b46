import { z } from 'zod';

/** A tenant name: 1–64 characters of `A-Z a-z 0-9 . _ -` (never `*` or `#`, which keys use). */
export const Tenant = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'tenant must be 1–64 characters of A-Z a-z 0-9 . _ -');
export type Tenant = z.infer<typeof Tenant>;

/** The tenant of a work item that names none. */
export const DEFAULT_TENANT = 'default';

/** The `tenant` claim of a token that may see every tenant (requires the `admin` scope). */
export const ALL_TENANTS = '*';

/** What a token may do: `admin` implies `read` and `cancel`. */
export const Scope = z.enum(['read', 'cancel', 'admin']);
export type Scope = z.infer<typeof Scope>;

/** Scopes written as `"read cancel"` (spaces or commas), or an error naming the bad word. */
export function parseScopes(text: string): Scope[] {
  const words = text.split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) throw new Error('a scope list needs at least one of read, cancel, admin');
  return words.map((word) => {
    const scope = Scope.safeParse(word);
    if (!scope.success) throw new Error(`unknown scope ${JSON.stringify(word)}: use read, cancel or admin`);
    return scope.data;
  });
}

/** Who a verified token speaks for. */
export interface Principal {
  readonly subject: string;
  /** A tenant name, or `*` (only with `admin`). */
  readonly tenant: string;
  readonly scopes: ReadonlySet<Scope>;
  /** The token's `exp`, epoch seconds. */
  readonly expiresAt: number;
}

const has = (principal: Principal, scope: Scope) =>
  principal.scopes.has(scope) || principal.scopes.has('admin');

/** Whether `principal` covers items of `tenant` at all (its own tenant, or `*`). */
export function coversTenant(principal: Pick<Principal, 'tenant'>, tenant: string): boolean {
  return principal.tenant === ALL_TENANTS || principal.tenant === tenant;
}

/** Whether `principal` may read (`GET`, `subscribe`, `all`) an item of `tenant`. */
export function mayRead(principal: Principal, tenant: string): boolean {
  return has(principal, 'read') && coversTenant(principal, tenant);
}

/** Whether `principal` may cancel an item of `tenant`. */
export function mayCancel(principal: Principal, tenant: string): boolean {
  return has(principal, 'cancel') && coversTenant(principal, tenant);
}

/** Whether `principal` may cancel at all (items of the tenants it covers). */
export function mayCancelAny(principal: Principal): boolean {
  return has(principal, 'cancel');
}

/** Whether `principal` may read at all (list, subscribe to `all` of its tenant). */
export function mayReadAny(principal: Principal): boolean {
  return has(principal, 'read');
}

/**
 * Partitions of the `byTenantStatus` index per tenant and status. One busy status of one tenant
 * (say 1,000 items a second entering `queued`) would put every index write on one partition key,
 * and sort keys that only grow (`createdAt`) defeat DynamoDB's split for heat; spread over 8 keys
 * it has 8 partitions' write capacity. A list reads all 8 in parallel and merges by time: 8 small
 * Queries instead of 1, a cost paid by the rare list call, not by every write. Fixed: changing it
 * would strand the rows written under the old spread.
 */
export const TENANT_STATUS_BUCKETS = 8;

/** FNV-1a of the item id: the same bucket from every writer, with no read. */
export function tenantStatusBucket(itemId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < itemId.length; i++) {
    hash ^= itemId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % TENANT_STATUS_BUCKETS;
}

/** The `byTenantStatus` partition key of one bucket: `<tenant>#<status>#<bucket>`. */
export function tenantStatusKeyOfBucket(tenant: string, status: string, bucket: number): string {
  return `${tenant}#${status}#${bucket}`;
}

/** The `byTenantStatus` partition key of an item: written with every write that sets `status`. */
export function tenantStatusKey(tenant: string, status: string, itemId: string): string {
  return tenantStatusKeyOfBucket(tenant, status, tenantStatusBucket(itemId));
}
