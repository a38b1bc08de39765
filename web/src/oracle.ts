// The browser signing oracle's checks (PRD §11.5, docs/protocol.md "What the
// wallet MUST verify before signing"): decide whether a 31511 challenge may be
// signed, and if not, why. Pure: no I/O, no DOM, no keys.
//
// It is the JS twin of the reference wallet's crates/wallet/src/verify.rs and
// makes the same decisions: nothing the relay states is trusted; sighashes are
// recomputed from the PSBT; inputs are matched against the checkpoint txids
// derived from the wallet's own VTXOs; every output is matched against the
// default VTXO script of the owner its colour hint names.
//
// Colour: `outputColours` turns the hints into "which output carries which
// asset amount" (docs/protocol.md, checks 9 and 10), and the ark tx's Arkade
// Asset packet (a 0-sat extension output, `OP_RETURN "ARK"…`) must say the
// same and list my inputs with exactly their colour (packet.ts, the twin of
// crates/wallet/src/packet.rs).

import type * as btc from '@scure/btc-signer';
import { checkPacket } from './packet';
import {
  checkPresentSignatures,
  checkpointTxid,
  collaborativeLeaf,
  decodePsbt,
  defaultVtxoScript,
  equal,
  hex,
  inputLeaf,
  inputSighash,
  isAnchor,
  isExtension,
  leafSigners,
  missingSigners,
  type Bytes,
  type Server,
} from './ark';

/** A VTXO as `sync_state` reports it. */
export interface OwnedVtxo {
  vtxo: string;
  sats: number;
  asset_id: string | null;
  ticker: string | null;
  amount: number;
  expires_at: number | null;
  tapscripts: string[];
  locked: boolean;
}

export interface SignEntry {
  psbt_index: number;
  input_index: number;
  pubkey: string;
  leaf_hash: string;
  sighash: string;
}

export interface ColourHint {
  psbt_index: number;
  output_index: number;
  owner: string;
  asset: string;
  amount: number;
  /** Of `amount`, what the owner burns on arrival (a land); the packet gives `amount − burned`. */
  burned?: number;
}

/** The decrypted content of a 31511. */
export interface Challenge {
  v: number;
  session_id: string;
  step: number;
  type: 'sign_ark_tx' | 'sign_checkpoint_txs';
  payload_to_sign: { psbts: string[]; sign: SignEntry[]; colour: ColourHint[] };
  human_readable_context?: string;
  expires_at?: number;
}

/** Intent content as this page builds it (docs/protocol.md, kind 31510). */
export interface IntentOutput {
  recipient: string;
  asset: string;
  amount: number;
  role?: 'fee';
}
export interface Leg {
  recipient?: string;
  asset: string;
  amount: number;
}
export interface IntentContent {
  v: 1;
  action_id: string;
  type: string;
  outputs: IntentOutput[];
  my_leg?: Leg | Leg[];
  counterparty_leg?: Leg | Leg[];
  memo?: string;
  mint?: { asset: string; ticker: string; amount: number }[];
  expires_at: number;
  /** One-step signing: the step-1 challenge also carries my checkpoints (docs/protocol.md). */
  one_step?: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Ticker → asset id, learnt from the wallet's own VTXOs. */
export class AssetBook {
  private tickers = new Map<string, string>();

  constructor(vtxos: OwnedVtxo[] = []) {
    for (const v of vtxos) if (v.asset_id && v.ticker) this.tickers.set(v.ticker, v.asset_id);
  }

  insert(ticker: string, id: string): void {
    this.tickers.set(ticker, id);
  }

  /** The asset id `asset` (an id or a ticker) names, if known. */
  resolve(asset: string): string | undefined {
    const a = asset.toLowerCase();
    return HEX64.test(a) ? a : this.tickers.get(asset);
  }

  /** A printable name: the ticker if known, else the id. */
  name(id: string): string {
    for (const [t, v] of this.tickers) if (v === id) return t;
    return id;
  }
}

export interface Payment {
  recipient: string;
  asset: string;
  amount: number;
}

/** An intent this wallet signed and authorises signatures for. */
export interface Authorised {
  intentId: string;
  payments: Payment[];
  receives: { from?: string; asset: string; amount: number }[];
  mint: { asset: string; amount: number }[];
  batch: boolean;
  /** The intent asked for one-step signing (`one_step`). */
  oneStep: boolean;
}

const BATCH_TYPES = ['atomic_swap', 'add_liquidity', 'remove_liquidity'];

function amountOf(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
    throw new Error(`${what}: ${String(n)} is not a positive integer this page can represent`);
  }
  return n;
}

/** Resolves an intent the wallet `me` signed (verify.rs `from_intent` / `from_batch_intent`). */
export function authorise(intentId: string, content: IntentContent, me: string, book: AssetBook): Authorised {
  const batch = BATCH_TYPES.includes(content.type);
  if (!batch && !['p2p_transfer', 'land_lightning'].includes(content.type)) {
    throw new Error(`cannot sign intents of type ${content.type}`);
  }
  const resolve = (a: string) => {
    const id = book.resolve(a);
    if (!id) throw new Error(`unknown asset ${a} (use its id, or hold some)`);
    return id;
  };
  const payments = content.outputs.map((o) => {
    if (o.recipient.toLowerCase() === me) throw new Error('an intent may not pay the wallet itself');
    return { recipient: o.recipient.toLowerCase(), asset: resolve(o.asset), amount: amountOf(o.amount, 'amount') };
  });
  const legs = (l?: Leg | Leg[]) => (l === undefined ? [] : Array.isArray(l) ? l : [l]);
  const receives = batch
    ? legs(content.counterparty_leg).map((l) => ({
        from: l.recipient?.toLowerCase(),
        asset: resolve(l.asset),
        amount: amountOf(l.amount, 'amount'),
      }))
    : [];
  const mint = batch ? (content.mint ?? []).map((m) => ({ asset: resolve(m.asset), amount: amountOf(m.amount, 'amount') })) : [];
  return { intentId, payments, receives, mint, batch, oneStep: content.one_step === true };
}

/** What the wallet knows independently of the relay's challenge. */
export interface Context {
  server: Server;
  me: string;
  relay: string;
  vtxos: OwnedVtxo[];
  book: AssetBook;
}

/** A verified step 1, kept to check step 2 against. */
export interface VerifiedArkTx {
  arkTx: btc.Transaction;
  spent: string[];
}

/** What to sign: the recomputed sighash of each requested input. */
export interface ToSign {
  psbt_index: number;
  input_index: number;
  sighash: string;
}

/** A refusal: every problem found (never empty). */
export class Refusal extends Error {
  constructor(public reasons: string[]) {
    super(reasons.join('; '));
  }
}

function refuseIf(why: string[]): void {
  if (why.length > 0) throw new Refusal(why);
}

function add(map: Map<string, number>, asset: string, n: number): void {
  map.set(asset, (map.get(asset) ?? 0) + n);
}

interface MyVtxo {
  vtxo: OwnedVtxo;
  leaf: Bytes;
}

/** My VTXOs by the txid of the checkpoint tx that spends them. */
function myCheckpoints(ctx: Context): Map<string, MyVtxo> {
  const out = new Map<string, MyVtxo>();
  const leaf = collaborativeLeaf(hex.decode(ctx.me), ctx.server.signer);
  for (const v of ctx.vtxos) {
    if (!v.tapscripts.some((t) => t.toLowerCase() === hex.encode(leaf))) continue;
    const [txid, vout] = v.vtxo.split(':');
    try {
      const id = checkpointTxid(ctx.server, { txid, vout: Number(vout), sats: BigInt(v.sats), leaf });
      out.set(id, { vtxo: v, leaf });
    } catch {
      // Not a VTXO this page can spend; it is simply never matched.
    }
  }
  return out;
}

/** Checks the `sign` entries against the PSBTs (check.rs `check_sign_requests`); returns what to sign. */
function checkSignEntries(psbts: btc.Transaction[], sign: SignEntry[], me: string, why: string[]): ToSign[] {
  const out: ToSign[] = [];
  for (const r of sign) {
    const at = `${r.psbt_index}/${r.input_index}`;
    const tx = psbts[r.psbt_index];
    if (!tx || !Number.isInteger(r.input_index) || r.input_index < 0 || r.input_index >= tx.inputsLength) {
      why.push(`sign entry names missing input ${at}`);
      continue;
    }
    if (r.pubkey.toLowerCase() !== me) {
      why.push(`sign entry ${at} is for another key (${r.pubkey}), not mine`);
      continue;
    }
    try {
      const { leaf, leafHash, sighash } = inputSighash(tx, r.input_index);
      if (!leafSignersInclude(leaf, me)) {
        why.push(`my key does not sign the leaf of input ${at}`);
        continue;
      }
      if (hex.encode(leafHash) !== r.leaf_hash.toLowerCase()) why.push(`leaf hash mismatch on input ${at}`);
      if (hex.encode(sighash) !== r.sighash.toLowerCase()) {
        why.push(`sighash mismatch on input ${at}: claimed ${r.sighash}, PSBT gives ${hex.encode(sighash)}`);
      }
      out.push({ psbt_index: r.psbt_index, input_index: r.input_index, sighash: hex.encode(sighash) });
    } catch (e) {
      why.push(`PSBT ${r.psbt_index} input ${r.input_index} is unreadable: ${(e as Error).message}`);
    }
  }
  return out;
}

function leafSignersInclude(leaf: Bytes, me: string): boolean {
  const key = hex.decode(me);
  return leafSigners(leaf).some((k) => equal(k, key));
}

/** One coloured output, as the challenge says and the PSBT confirms. */
interface OutputColour {
  output: number;
  owner: string;
  asset: string;
  amount: number;
}

/**
 * Which output carries which asset amount (checks 9 and the shape of 10):
 * every hint names an existing, non-anchor output once, its owner is a key,
 * its asset resolves, and the output is the default VTXO of that owner.
 * THE place where the Arkade asset packet will be read when it lands.
 */
function outputColours(ctx: Context, tx: btc.Transaction, hints: ColourHint[], why: string[]): OutputColour[] {
  const out: OutputColour[] = [];
  const seen = new Set<number>();
  for (const h of hints) {
    const o = h.output_index;
    if (h.psbt_index !== 0) {
      why.push(`colour hint names PSBT ${h.psbt_index}`);
      continue;
    }
    if (!Number.isInteger(o) || o < 0 || o >= tx.outputsLength) {
      why.push(`colour hint names missing output ${o}`);
      continue;
    }
    const txo = tx.getOutput(o);
    if (!txo.script || txo.amount === undefined || isAnchor(txo.script)) {
      why.push(`colour hint on the anchor output ${o}`);
      continue;
    }
    if (seen.has(o)) {
      why.push(`output ${o} has two colour hints`);
      continue;
    }
    seen.add(o);
    const owner = h.owner.toLowerCase();
    if (!HEX64.test(owner)) {
      why.push(`output ${o}: owner ${JSON.stringify(h.owner)} is not a key`);
      continue;
    }
    const asset = ctx.book.resolve(h.asset);
    if (!asset) {
      why.push(`output ${o}: unknown asset ${h.asset}`);
      continue;
    }
    if (!Number.isSafeInteger(h.amount) || h.amount <= 0) {
      why.push(`output ${o}: colour amount ${h.amount}`);
      continue;
    }
    if (!equal(defaultVtxoScript(ctx.server, hex.decode(owner), txo.amount), txo.script)) {
      why.push(`output ${o} is not a VTXO of ${owner}, whom its colour hint names`);
      continue;
    }
    out.push({ output: o, owner, asset, amount: h.amount });
  }
  return out;
}

/**
 * Checks a step-1 `sign_ark_tx` challenge against the intent; returns what to
 * sign. For a one-step intent the challenge also carries my checkpoints
 * (`psbts[1 + k]`, unsigned): checks 13–14 against the ark tx of the same
 * challenge (verify/checkpoint.rs `verify_step1_checkpoints`).
 */
export function verifyArkTx(ctx: Context, intent: Authorised, ch: Challenge): { verified: VerifiedArkTx; toSign: ToSign[] } {
  const payload = ch.payload_to_sign;
  if (!intent.oneStep) return verifyArkTxOnly(ctx, intent, ch);
  if (payload.psbts.length < 2) throw new Refusal(['I asked for one-step signing: step 1 must carry my checkpoints']);
  const arkOnly = { ...ch, payload_to_sign: { ...payload, psbts: payload.psbts.slice(0, 1), sign: payload.sign.filter((r) => r.psbt_index === 0) } };
  const { verified, toSign } = verifyArkTxOnly(ctx, intent, arkOnly);
  let cps: btc.Transaction[];
  try {
    cps = payload.psbts.slice(1).map(decodePsbt);
  } catch (e) {
    throw new Refusal([`not a PSBT: ${(e as Error).message}`]);
  }
  const cpSign = payload.sign.filter((r) => r.psbt_index !== 0).map((r) => ({ ...r, psbt_index: r.psbt_index - 1 }));
  const why: string[] = [];
  const cpToSign = checkCheckpoints(ctx, verified, cps, cpSign, false, why);
  const covered = new Set(cps.map((cp) => { const t = cp.getInput(0); return t.txid ? `${hex.encode(t.txid)}:${t.index}` : '?'; }));
  if (covered.size !== cps.length) why.push('two checkpoints spend the same VTXO');
  for (const v of verified.spent) if (!covered.has(v)) why.push(`no checkpoint for ${v}, which I sign away`);
  refuseIf(why);
  return { verified, toSign: [...toSign, ...cpToSign.map((t) => ({ ...t, psbt_index: t.psbt_index + 1 }))] };
}

/** Step 1's ark tx alone (`psbts` is exactly it). */
function verifyArkTxOnly(ctx: Context, intent: Authorised, ch: Challenge): { verified: VerifiedArkTx; toSign: ToSign[] } {
  if (ch.session_id !== intent.intentId) {
    throw new Refusal([`session ${ch.session_id} is not the session of my intent ${intent.intentId}`]);
  }
  if (ch.step !== 1 || ch.type !== 'sign_ark_tx') throw new Refusal([`expected step 1 sign_ark_tx, got step ${ch.step} ${ch.type}`]);
  const payload = ch.payload_to_sign;
  if (payload.psbts.length !== 1) throw new Refusal([`step 1 must carry exactly one PSBT, got ${payload.psbts.length}`]);
  let tx: btc.Transaction;
  try {
    tx = decodePsbt(payload.psbts[0]);
  } catch (e) {
    throw new Refusal([`not a PSBT: ${(e as Error).message}`]);
  }
  if (payload.sign.length === 0) throw new Refusal(['the challenge asks for no signature']);
  const why: string[] = [];
  const seen = new Set<number>();
  for (const r of payload.sign) {
    if (r.psbt_index !== 0) why.push(`sign entry names PSBT ${r.psbt_index}`);
    if (seen.has(r.input_index)) why.push(`input ${r.input_index} is asked for twice`);
    seen.add(r.input_index);
  }
  refuseIf(why);
  const toSign = checkSignEntries([tx], payload.sign, ctx.me, why);
  why.push(...checkPresentSignatures(tx, 'the ark tx'));
  refuseIf(why);

  // Inputs: each one I sign spends one of my VTXOs through its checkpoint.
  const mine = myCheckpoints(ctx);
  const inColour = new Map<string, number>();
  let inSats = 0n;
  const spent: string[] = [];
  const ownInputs: [number, [string, number] | null][] = [];
  for (const r of payload.sign) {
    const i = r.input_index;
    const txin = tx.getInput(i);
    const prevTxid = txin.txid ? hex.encode(txin.txid) : '';
    const own = txin.index === 0 ? mine.get(prevTxid) : undefined;
    if (!own) {
      why.push(`input ${i} (${prevTxid}:${txin.index}) does not spend a VTXO of mine`);
      continue;
    }
    try {
      if (!equal(inputLeaf(tx, i), own.leaf)) why.push(`input ${i} is not spent through my collaborative leaf`);
    } catch {
      why.push(`input ${i} is not spent through my collaborative leaf`);
    }
    const claimed = txin.witnessUtxo?.amount;
    if (claimed !== BigInt(own.vtxo.sats)) {
      why.push(`input ${i} claims ${String(claimed)} sats, my VTXO ${own.vtxo.vtxo} has ${own.vtxo.sats}`);
    }
    inSats += BigInt(own.vtxo.sats);
    if (own.vtxo.asset_id) add(inColour, own.vtxo.asset_id, own.vtxo.amount);
    ownInputs.push([i, own.vtxo.asset_id ? [own.vtxo.asset_id, own.vtxo.amount] : null]);
    spent.push(own.vtxo.vtxo);
  }
  // Colour is read from the transaction: the packet must say what the hints say.
  why.push(...checkPacket(tx, payload.colour, (a) => ctx.book.resolve(a), (a) => ctx.book.name(a), ownInputs));
  const colours = outputColours(ctx, tx, payload.colour, why);
  if (intent.batch) {
    why.push(...checkBatchOutputs(ctx, intent, tx, colours, inColour, inSats));
  } else {
    why.push(...checkSingleOutputs(ctx, intent, tx, colours, inColour, inSats));
  }
  refuseIf(why);
  return { verified: { arkTx: tx, spent }, toSign };
}

function myScript(ctx: Context, owner: string, sats: bigint): Bytes {
  return defaultVtxoScript(ctx.server, hex.decode(owner), sats);
}

/** A single intent: others' outputs are exactly its payments; colour conserved; sats only to me, them, or the relay's change. */
function checkSingleOutputs(
  ctx: Context,
  intent: Authorised,
  tx: btc.Transaction,
  colours: OutputColour[],
  inColour: Map<string, number>,
  inSats: bigint,
): string[] {
  const why: string[] = [];
  const name = (a: string) => ctx.book.name(a);
  const hinted = new Set(colours.map((c) => c.output));
  const change = new Map<string, number>();
  const others: Payment[] = [];
  let hintedSats = 0n;
  for (const c of colours) {
    hintedSats += tx.getOutput(c.output).amount ?? 0n;
    if (c.owner === ctx.me) add(change, c.asset, c.amount);
    else others.push({ recipient: c.owner, asset: c.asset, amount: c.amount });
  }
  for (let o = 0; o < tx.outputsLength; o++) {
    const out = tx.getOutput(o);
    if (hinted.has(o) || !out.script || isAnchor(out.script)) continue;
    const sats = out.amount ?? 0n;
    if (sats === 0n && isExtension(out.script)) continue; // the asset packet carries no value
    if (equal(myScript(ctx, ctx.me, sats), out.script)) hintedSats += sats;
    else if (!equal(myScript(ctx, ctx.relay, sats), out.script)) {
      why.push(`output ${o} (${sats} sats) has no colour and is neither mine nor the relay's change`);
    }
  }
  const unmatched = [...others];
  for (const want of intent.payments) {
    const at = unmatched.findIndex((p) => p.recipient === want.recipient && p.asset === want.asset && p.amount === want.amount);
    if (at >= 0) unmatched.splice(at, 1);
    else why.push(`outputs do not match my intent: no output pays ${want.amount} ${name(want.asset)} to ${want.recipient}`);
  }
  for (const p of unmatched) {
    why.push(`outputs do not match my intent: unexpected ${p.amount} ${name(p.asset)} to ${p.recipient}`);
  }
  const outColour = new Map(change);
  for (const p of intent.payments) add(outColour, p.asset, p.amount);
  for (const a of new Set([...inColour.keys(), ...outColour.keys()])) {
    const i = inColour.get(a) ?? 0;
    const o = outColour.get(a) ?? 0;
    if (i !== o) why.push(`colour not conserved for ${name(a)}: my inputs carry ${i}, payments, fee and my change ${o}`);
  }
  if (inSats > hintedSats) {
    why.push(`my inputs' ${inSats} sats exceed the ${hintedSats} sats of my change, recipients and fee`);
  }
  return why;
}

/** A batch intent: only my legs are checked, exactly (verify.rs `check_batch_outputs`). */
function checkBatchOutputs(
  ctx: Context,
  intent: Authorised,
  tx: btc.Transaction,
  colours: OutputColour[],
  inColour: Map<string, number>,
  inSats: bigint,
): string[] {
  const why: string[] = [];
  const name = (a: string) => ctx.book.name(a);
  const used = new Set<number>();
  let mySats = 0n;
  const paid = new Map<string, number>();
  for (const want of intent.payments) {
    add(paid, want.asset, want.amount);
    const hit = colours.find(
      (c) => !used.has(c.output) && c.owner === want.recipient && c.asset === want.asset && c.amount === want.amount,
    );
    if (hit) {
      used.add(hit.output);
      mySats += tx.getOutput(hit.output).amount ?? 0n;
    } else {
      why.push(`outputs do not match my intent: no output pays ${want.amount} ${name(want.asset)} to ${want.recipient}`);
    }
  }
  const owned = new Map<string, number>();
  for (const c of colours) {
    if (c.owner === ctx.me) {
      add(owned, c.asset, c.amount);
      used.add(c.output);
    }
  }
  for (let o = 0; o < tx.outputsLength; o++) {
    const out = tx.getOutput(o);
    const sats = out.amount ?? 0n;
    if (out.script && equal(myScript(ctx, ctx.me, sats), out.script)) {
      mySats += sats;
      used.add(o);
    }
  }
  const expected = new Map<string, number>();
  for (const [a, n] of inColour) add(expected, a, n);
  for (const m of intent.mint) add(expected, m.asset, m.amount);
  for (const [a, n] of paid) add(expected, a, -n);
  for (const [a, n] of expected) {
    if (n < 0) why.push(`my inputs do not cover my payments of ${name(a)}: short by ${-n}`);
  }
  for (const r of intent.receives) add(expected, r.asset, r.amount);
  for (const a of new Set([...expected.keys(), ...owned.keys()])) {
    const want = Math.max(expected.get(a) ?? 0, 0);
    const got = owned.get(a) ?? 0;
    if (want !== got) {
      why.push(
        `outputs do not match my intent: I should own ${want} ${name(a)} after the batch (change + what I receive), the outputs give me ${got}`,
      );
    }
  }
  if (inSats > mySats) why.push(`my inputs' ${inSats} sats exceed the ${mySats} sats of my outputs and my payments`);
  return why;
}

/** Checks a step-2 `sign_checkpoint_txs` challenge against the step-1 tx I signed; returns what to sign. */
export function verifyCheckpoints(ctx: Context, step1: VerifiedArkTx, ch: Challenge): ToSign[] {
  if (ch.step !== 2 || ch.type !== 'sign_checkpoint_txs') {
    throw new Refusal([`expected step 2 sign_checkpoint_txs, got step ${ch.step} ${ch.type}`]);
  }
  const payload = ch.payload_to_sign;
  if (payload.psbts.length === 0) throw new Refusal(['step 2 carries no checkpoint']);
  const why: string[] = [];
  if (payload.colour.length > 0) why.push('step 2 must carry no colour hints');
  let cps: btc.Transaction[];
  try {
    cps = payload.psbts.map(decodePsbt);
  } catch (e) {
    throw new Refusal([`not a PSBT: ${(e as Error).message}`]);
  }
  const toSign = checkCheckpoints(ctx, step1, cps, payload.sign, true, why);
  refuseIf(why);
  return toSign;
}

/**
 * Checks checkpoints against the step-1 ark tx (checks 13–14; 15, the
 * server's signatures, only when `serverSigned`: a one-step challenge's are
 * unsigned) and their `sign` entries (indexed from 0); returns what to sign.
 */
function checkCheckpoints(ctx: Context, step1: VerifiedArkTx, cps: btc.Transaction[], sign: SignEntry[], serverSigned: boolean, why: string[]): ToSign[] {
  const perPsbt = cps.map(() => 0);
  for (const r of sign) {
    if (r.input_index !== 0) why.push(`checkpoint ${r.psbt_index} input ${r.input_index} does not exist`);
    if (r.psbt_index in perPsbt) perPsbt[r.psbt_index] += 1;
    else why.push(`sign entry names missing PSBT ${r.psbt_index}`);
  }
  if (perPsbt.some((n) => n !== 1)) why.push('every checkpoint must be asked for exactly one signature');
  if (why.length > 0) return [];
  const toSign = checkSignEntries(cps, sign, ctx.me, why);
  // Each checkpoint is exactly what arkd's rules build for a VTXO I signed
  // away in step 1, and the ark tx I signed spends it.
  const mine = new Map([...myCheckpoints(ctx)].map(([txid, v]) => [v.vtxo.vtxo, txid]));
  const spentByArkTx = new Set<string>();
  for (let i = 0; i < step1.arkTx.inputsLength; i++) {
    const t = step1.arkTx.getInput(i).txid;
    if (t) spentByArkTx.add(hex.encode(t));
  }
  cps.forEach((cp, i) => {
    const txin = cp.getInput(0);
    const vtxo = txin.txid ? `${hex.encode(txin.txid)}:${txin.index}` : '?';
    const expected = mine.get(vtxo);
    if (cp.inputsLength !== 1 || !step1.spent.includes(vtxo) || !expected) {
      why.push(`checkpoint ${i} does not spend a VTXO I signed away in step 1`);
    } else if (expected !== cp.id) {
      why.push(`checkpoint ${i} is not built per the server's rules (expected ${expected}, got ${cp.id})`);
    }
    if (!spentByArkTx.has(cp.id)) why.push(`checkpoint ${i} (${cp.id}) is not spent by the ark tx I signed`);
    try {
      const missing = missingSigners(cp, 0).map((k) => hex.encode(k));
      if (serverSigned && !(missing.length === 0 || (missing.length === 1 && missing[0] === ctx.me))) {
        why.push(`checkpoint ${i} lacks the Ark server's signature`);
      }
    } catch (e) {
      why.push(`checkpoint ${i}: ${(e as Error).message}`);
    }
  });
  why.push(...cps.flatMap((cp, i) => checkPresentSignatures(cp, `checkpoint ${i}`)));
  refuseIf(why);
  return toSign;
}