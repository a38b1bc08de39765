// The amount of a BOLT11 invoice, read from its human-readable part
// (`ln` + network + amount + multiplier), so the page can show "amount + fee"
// before the user signs. Written by hand: this is all the page needs from the
// invoice (the relay checks the signature, network and expiry, 6001/6002), and
// it avoids pulling a whole invoice decoder into the bundle.

const MULTIPLIER: Record<string, bigint> = { m: 1_000_000_000n, u: 1_000_000n, n: 1_000n, p: 1n };

/** Sats of `invoice`, or throws if it names no amount or is not BOLT11. */
export function invoiceSats(invoice: string): number {
  const s = invoice.trim().toLowerCase();
  const sep = s.lastIndexOf('1');
  if (!s.startsWith('ln') || sep < 0) throw new Error('not a BOLT11 invoice');
  const m = /^ln(bcrt|bc|tbs|tb|sb)(\d+)([munp]?)$/.exec(s.slice(0, sep));
  if (!m) throw new Error('the invoice names no amount (an amount is required)');
  const [, , digits, unit] = m;
  // Amounts are in pico-BTC below; 1 sat = 10 000 pico-BTC.
  const pico = unit ? BigInt(digits) * MULTIPLIER[unit] : BigInt(digits) * 1_000_000_000_000n;
  if (pico % 10_000n !== 0n) throw new Error('the invoice amount is not a whole number of sats');
  const sats = pico / 10_000n;
  if (sats > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('the invoice amount is too large');
  return Number(sats);
}
