import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the system's CSPRNG 4 KiB at a time: one call per 409 ids, not one per id. */
const pool = Buffer.alloc(4096);
let used = pool.length;

/**
 * A UUID version 7: 48 bits of milliseconds since the epoch, then random bits. Ids made later
 * sort later, so new sagas land at the right edge of every index keyed by saga id (sagas,
 * saga_events, orders, payments, …) instead of at random pages: fewer pages written per commit,
 * and `ORDER BY saga_id` is creation order. RFC 9562, section 5.7.
 */
export function newSagaId(now: number = Date.now()): string {
  if (used + 10 > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = Buffer.allocUnsafe(16);
  bytes.writeUIntBE(now, 0, 6);
  pool.copy(bytes, 6, used, used + 10);
  used += 10;
  bytes[6] = (bytes[6]! & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
