// The oracle's check of an ark tx's Arkade Asset packet: colour is read from
// the transaction the user signs, not only from the relay's `colour` hints,
// and the two must agree. The JS twin of the reference wallet's
// crates/wallet/src/packet.rs; the decoder follows crates/ark/src/asset.rs
// (arkd's packet format). Hand-written because no npm library decodes
// Arkade Asset packets. Not checked here (the reference wallet does): that
// the packet is the canonical re-encoding of what it decodes to.
//
// Format: the extension output is `OP_RETURN <"ARK" records>`, a record is
// `type u8, uvarint length, body`; type 0 is the asset packet: `uvarint
// groups`, each `presence u8` [asset id: 32 bytes + u16le group]
// [control: type u8 + id or u16le] [metadata: uvarint n × (key, value)],
// `uvarint inputs` × (0x01, u16le vin, uvarint amount), `uvarint outputs` ×
// (0x01, u16le vout, uvarint amount). A ledger asset id travels as the
// Arkade id (its 32 bytes, group 0); group 1 of an asset's genesis is its
// control asset, whose ledger id is SHA256(T ‖ T ‖ asset id) with
// T = SHA256("ark-relay/control-asset") (docs/protocol.md, "Asset ids,
// issuance and the control asset"; `ledger_id` in crates/ark/src/asset.rs).

import * as btc from '@scure/btc-signer';
import { hex, utf8 } from '@scure/base';
import { sha256 } from '@noble/hashes/sha2.js';

const CONTROL_TAG = sha256(utf8.decode('ark-relay/control-asset'));

/** The ledger id of the control asset of ledger asset `id` (hex). */
export function controlLedgerId(id: string): string {
  const bytes = new Uint8Array(96);
  bytes.set(CONTROL_TAG, 0);
  bytes.set(CONTROL_TAG, 32);
  bytes.set(hex.decode(id), 64);
  return hex.encode(sha256(bytes));
}

/** One asset amount an input spends or an output receives (`asset`: ledger id hex, or `?…` if not a ledger id). */
type Holding = [asset: string, amount: bigint];

interface Packet {
  issues: boolean;
  inputs: Map<number, Holding[]>;
  outputs: Map<number, Holding[]>;
}

class Reader {
  at = 0;
  constructor(private bytes: Uint8Array) {}
  take(n: number, what: string): Uint8Array {
    if (this.at + n > this.bytes.length) throw new Error(`truncated ${what}`);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  byte(what: string): number {
    return this.take(1, what)[0];
  }
  u16le(what: string): number {
    const b = this.take(2, what);
    return b[0] | (b[1] << 8);
  }
  uvarint(what: string): bigint {
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(what);
      if (i === 9 && b > 1) throw new Error(`${what} overflows u64`);
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return v;
    }
    throw new Error(`${what} overflows u64`);
  }
  count(what: string): number {
    const n = this.uvarint(what);
    if (n > 1000n) throw new Error(`too many ${what}: ${n}`);
    return Number(n);
  }
  assetId(): string {
    const id = hex.encode(this.take(32, 'asset id'));
    const group = this.u16le('asset id group index');
    if (group === 0) return id;
    if (group === 1) return controlLedgerId(id);
    return `?${id}:${group}`;
  }
  done(): boolean {
    return this.at === this.bytes.length;
  }
}

/** The extension payload of `script` (after OP_RETURN), if it is an `ARK` extension. */
function extensionPayload(script: Uint8Array): Uint8Array | undefined {
  let ops: unknown[];
  try {
    ops = btc.Script.decode(script);
  } catch {
    return undefined;
  }
  const p = ops[1];
  return ops[0] === 'RETURN' && p instanceof Uint8Array && p.length >= 3 && p[0] === 0x41 && p[1] === 0x52 && p[2] === 0x4b
    ? p
    : undefined;
}

function push(map: Map<number, Holding[]>, at: number, h: Holding): void {
  map.set(at, [...(map.get(at) ?? []), h]);
}

function decodePacket(body: Uint8Array): Packet {
  const r = new Reader(body);
  const packet: Packet = { issues: false, inputs: new Map(), outputs: new Map() };
  const groups = r.count('asset groups');
  if (groups === 0) throw new Error('a packet needs at least one group');
  for (let g = 0; g < groups; g++) {
    const presence = r.byte('presence');
    const id = presence & 0x01 ? r.assetId() : `?issued:${g}`;
    if (!(presence & 0x01)) packet.issues = true;
    if (presence & 0x02) {
      const t = r.byte('asset ref type');
      if (t === 0x01) r.assetId();
      else if (t === 0x02) r.u16le('asset ref group index');
      else throw new Error(`unknown asset ref type ${t}`);
    }
    if (presence & 0x04) {
      for (let n = r.count('metadata entries'); n > 0; n--) {
        r.take(Number(r.uvarint('key')), 'key');
        r.take(Number(r.uvarint('value')), 'value');
      }
    }
    for (let n = r.count('asset inputs'); n > 0; n--) {
      if (r.byte('asset input type') !== 0x01) throw new Error('unsupported asset input type');
      const vin = r.u16le('asset input vin');
      push(packet.inputs, vin, [id, r.uvarint('asset input amount')]);
    }
    for (let n = r.count('asset outputs'); n > 0; n--) {
      if (r.byte('asset output type') !== 0x01) throw new Error('unknown asset output type');
      const vout = r.u16le('asset output vout');
      const amount = r.uvarint('asset output amount');
      if (amount === 0n) throw new Error('asset output amount must be > 0');
      push(packet.outputs, vout, [id, amount]);
    }
  }
  if (!r.done()) throw new Error('unknown bytes after the packet');
  return packet;
}

/** The asset packet of `tx`, if any (at most one extension output, of value 0). */
function txPacket(tx: btc.Transaction): Packet | undefined {
  let found: Uint8Array | undefined;
  for (let o = 0; o < tx.outputsLength; o++) {
    const out = tx.getOutput(o);
    const payload = out.script && extensionPayload(out.script);
    if (!payload) continue;
    if (found) throw new Error('more than one extension output');
    if (out.amount !== 0n) throw new Error(`extension output ${o} carries ${String(out.amount)} sats`);
    found = payload;
  }
  if (!found) return undefined;
  const r = new Reader(found.subarray(3));
  let asset: Packet | undefined;
  const types = new Set<number>();
  while (!r.done()) {
    const t = r.byte('extension record type');
    const body = r.take(Number(r.uvarint('extension record length')), 'extension record');
    if (types.has(t)) throw new Error(`duplicate extension record type ${t}`);
    types.add(t);
    if (t === 0) asset = decodePacket(body);
  }
  if (types.size === 0) throw new Error('empty extension');
  return asset;
}

/** A colour hint as the packet check reads it. */
export interface PacketHint {
  psbt_index: number;
  output_index: number;
  asset: string;
  amount: number;
  burned?: number;
}

const show = (hs: Holding[], name: (id: string) => string) =>
  hs.length === 0 ? 'no asset' : hs.map(([a, n]) => `${n} ${a.startsWith('?') ? a : name(a)}`).join(' + ');

/**
 * Every reason to refuse the packet of `tx` (crates/wallet/src/packet.rs
 * `check_packet`): present when colour moves; no new asset issued; each of
 * my inputs (`mine`: input index → its colour as my state knows it) listed
 * with exactly that colour; each output the packet colours hinted with the
 * same asset and `amount − burned`; nothing hinted missing from it.
 */
export function checkPacket(
  tx: btc.Transaction,
  hints: PacketHint[],
  resolve: (asset: string) => string | undefined,
  name: (id: string) => string,
  mine: [input: number, colour: [asset: string, amount: number] | null][],
): string[] {
  const why: string[] = [];
  let packet: Packet | undefined;
  try {
    packet = txPacket(tx);
  } catch (e) {
    return [`asset packet: ${(e as Error).message}`];
  }
  if (!packet) {
    if (mine.some(([, c]) => c) || hints.length > 0) why.push('the transaction carries no asset packet, yet colour moves');
    return why;
  }
  if (packet.issues) why.push('the asset packet issues a new asset');
  for (const [i, c] of mine) {
    const got = packet.inputs.get(i) ?? [];
    const want: Holding[] = c ? [[c[0], BigInt(c[1])]] : [];
    const same = got.length === want.length && got.every(([a, n], k) => a === want[k][0] && n === want[k][1]);
    if (!same) why.push(`asset packet lists my input ${i} as ${show(got, name)}, I know it as ${show(want, name)}`);
  }
  const hinted = new Map<number, [string | undefined, bigint]>();
  for (const h of hints.filter((h) => h.psbt_index === 0)) {
    const kept = BigInt(h.amount) - BigInt(h.burned ?? 0);
    if (kept < 0n) why.push(`output ${h.output_index}: colour hint burns ${h.burned} of ${h.amount}`);
    else hinted.set(h.output_index, [resolve(h.asset), kept]);
  }
  for (const [o, got] of packet.outputs) {
    const hint = hinted.get(o);
    if (!hint) {
      why.push(`asset packet gives output ${o} ${show(got, name)} without a colour hint`);
      continue;
    }
    const [asset, amount] = hint;
    if (!(got.length === 1 && got[0][0] === asset && got[0][1] === amount)) {
      why.push(`output ${o}: the asset packet gives ${show(got, name)}, the colour hint says ${amount} ${asset ? name(asset) : 'of an unknown asset'}`);
    }
  }
  for (const [o, [, amount]] of hinted) {
    if (!packet.outputs.has(o) && amount > 0n) why.push(`output ${o}: the colour hint says ${amount}, the asset packet gives nothing`);
  }
  return why;
}
