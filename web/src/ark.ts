// Ark transaction facts a browser wallet recomputes before it signs
// (docs/protocol.md "What the wallet MUST verify"). Pure: no I/O, no DOM.
//
// The JS twin of crates/ark (script.rs, sign.rs, tx.rs): tapscript leaves as
// arkd builds them, btcd's taproot tree assembly, default VTXO scripts,
// checkpoint txids, BIP-341 script-path sighashes and signature checks. PSBT
// parsing, sighashes and tweaks come from @scure/btc-signer and
// @noble/curves; only the Ark-specific script shapes are written here, since
// no JS library builds arkd's exact trees (ark-ts's differ in leaf order).

import * as btc from '@scure/btc-signer';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64, hex } from '@scure/base';

export type Bytes = Uint8Array;

/** The Ark server's parameters, as `GET /info` and `get_info` give them (`ark`). */
export interface ServerParams {
  signer_pubkey: string;
  forfeit_pubkey: string;
  checkpoint_tapscript: string;
  unilateral_exit_delay: number;
  checkpoint_exit_delay: number;
  dust: number;
  network: string;
}

/** Parsed server parameters. */
export interface Server {
  signer: Bytes;
  checkpointTapscript: Bytes;
  exitDelaySequence: number;
  dust: bigint;
}

const OP_CHECKSIG = 0xac;
const OP_CHECKSIGVERIFY = 0xad;
const OP_CHECKSIGADD = 0xba;
const OP_CSV = 0xb2;
const OP_DROP = 0x75;
const LEAF_VERSION = 0xc0;
/** The zero-value P2A anchor every Ark transaction ends with. */
export const ANCHOR_SCRIPT = hex.decode('51024e73');
/** BIP-341's NUMS point: the unspendable internal key of every VTXO. */
export const NUMS_KEY = hex.decode('50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0');

/** Seconds-based BIP-68 flag and granularity (arkd `BIP68Sequence`). */
const SEQ_TYPE_FLAG = 1 << 22;
const MIN_SECONDS = 512;

/** arkd's GetInfo delay (blocks below 512, else seconds) as a BIP-68 sequence. */
export function delayToSequence(value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new Error(`bad delay ${value}`);
  if (value < MIN_SECONDS) return value;
  if (value % 512 !== 0) throw new Error(`delay ${value}s is not a multiple of 512`);
  return SEQ_TYPE_FLAG | (value >>> 9);
}

export function parseServer(p: ServerParams): Server {
  return {
    signer: hex.decode(p.signer_pubkey),
    checkpointTapscript: hex.decode(p.checkpoint_tapscript),
    exitDelaySequence: delayToSequence(p.unilateral_exit_delay),
    dust: BigInt(p.dust),
  };
}

export function concat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

export function equal(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function compareBytes(a: Bytes, b: Bytes): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function taggedHash(tag: string, ...msgs: Bytes[]): Bytes {
  const t = sha256(new TextEncoder().encode(tag));
  return sha256(concat(t, t, ...msgs));
}

function compactSize(n: number): Bytes {
  if (n < 0xfd) return Uint8Array.of(n);
  return Uint8Array.of(0xfd, n & 0xff, n >> 8);
}

/** A minimal script-number push, as rust-bitcoin's `push_int`. */
function pushInt(n: number): Bytes {
  if (n === 0) return Uint8Array.of(0x00);
  if (n >= 1 && n <= 16) return Uint8Array.of(0x50 + n);
  const bytes: number[] = [];
  let v = Math.abs(n);
  while (v > 0) {
    bytes.push(v & 0xff);
    v = Math.floor(v / 256);
  }
  if (bytes[bytes.length - 1] & 0x80) bytes.push(n < 0 ? 0x80 : 0);
  else if (n < 0) bytes[bytes.length - 1] |= 0x80;
  return Uint8Array.of(bytes.length, ...bytes);
}

function pushKey(key: Bytes): Bytes {
  return concat(Uint8Array.of(32), key);
}

/** `<delay> CSV DROP <key> CHECKSIG`: a default VTXO's exit leaf. */
export function csvLeaf(key: Bytes, sequence: number): Bytes {
  return concat(pushInt(sequence), Uint8Array.of(OP_CSV, OP_DROP), pushKey(key), Uint8Array.of(OP_CHECKSIG));
}

/** `<owner> CHECKSIGVERIFY <signer> CHECKSIG`: the collaborative leaf. */
export function collaborativeLeaf(owner: Bytes, signer: Bytes): Bytes {
  return concat(pushKey(owner), Uint8Array.of(OP_CHECKSIGVERIFY), pushKey(signer), Uint8Array.of(OP_CHECKSIG));
}

/** Keys a spend through `leaf` needs: every 32-byte push followed by a CHECKSIG op. */
export function leafSigners(leaf: Bytes): Bytes[] {
  const keys: Bytes[] = [];
  let i = 0;
  while (i < leaf.length) {
    const op = leaf[i];
    if (op >= 1 && op <= 75) {
      const data = leaf.subarray(i + 1, i + 1 + op);
      const next = leaf[i + 1 + op];
      if (op === 32 && (next === OP_CHECKSIG || next === OP_CHECKSIGVERIFY || next === OP_CHECKSIGADD)) {
        keys.push(data);
      }
      i += 1 + op;
    } else if (op === 0x4c) i += 2 + leaf[i + 1];
    else if (op === 0x4d) i += 3 + (leaf[i + 1] | (leaf[i + 2] << 8));
    else i += 1;
  }
  return keys;
}

export function leafHash(leaf: Bytes): Bytes {
  return taggedHash('TapLeaf', Uint8Array.of(LEAF_VERSION), compactSize(leaf.length), leaf);
}

function branch(a: Bytes, b: Bytes): Bytes {
  return compareBytes(a, b) <= 0 ? taggedHash('TapBranch', a, b) : taggedHash('TapBranch', b, a);
}

/** The merkle root of `leaves`, assembled like btcd's `AssembleTaprootScriptTree`. */
export function treeRoot(leaves: Bytes[]): Bytes {
  if (leaves.length === 0) throw new Error('empty taptree');
  const hashes = leaves.map(leafHash);
  if (hashes.length === 1) return hashes[0];
  const branches: Bytes[] = [];
  for (let i = 0; i < hashes.length; i += 2) {
    if (i + 1 < hashes.length) branches.push(branch(hashes[i], hashes[i + 1]));
    else branches.push(branch(branches.pop() as Bytes, hashes[i]));
  }
  while (branches.length > 1) {
    const a = branches.shift() as Bytes;
    const b = branches.shift() as Bytes;
    branches.push(branch(a, b));
  }
  return branches[0];
}

/** The tweaked output key (and parity) of a NUMS-keyed tree with `root`. */
export function outputKey(root: Bytes, internal: Bytes = NUMS_KEY): [Bytes, number] {
  const [key, parity] = btc.utils.taprootTweakPubkey(internal, root);
  return [key, parity];
}

/** `OP_1 <key>`, or arkd's sub-dust `OP_RETURN <key>` below `dust`. */
export function outputScript(key: Bytes, sats: bigint, dust: bigint): Bytes {
  return sats < dust ? concat(Uint8Array.of(0x6a, 32), key) : concat(Uint8Array.of(0x51, 32), key);
}

/** The default VTXO leaves of `owner`: `[exit, collaborative]` (arkd's order). */
export function defaultVtxoLeaves(server: Server, owner: Bytes): Bytes[] {
  return [csvLeaf(owner, server.exitDelaySequence), collaborativeLeaf(owner, server.signer)];
}

/** The output script of a default VTXO of `owner` carrying `sats`. */
export function defaultVtxoScript(server: Server, owner: Bytes, sats: bigint): Bytes {
  const [key] = outputKey(treeRoot(defaultVtxoLeaves(server, owner)));
  return outputScript(key, sats, server.dust);
}

/** A VTXO spent through `leaf` (one of its `tapscripts`). */
export interface SpendableVtxo {
  txid: string;
  vout: number;
  sats: bigint;
  leaf: Bytes;
}

/** The txid of the checkpoint tx arkd's rules build for `v` (tx.rs `build_checkpoint`). */
export function checkpointTxid(server: Server, v: SpendableVtxo): string {
  const [key] = outputKey(treeRoot([server.checkpointTapscript, v.leaf]));
  const tx = new btc.Transaction({ version: 3, allowUnknownOutputs: true, lockTime: 0 });
  tx.addInput({ txid: v.txid, index: v.vout, sequence: 0xffffffff });
  tx.addOutput({ script: concat(Uint8Array.of(0x51, 32), key), amount: v.sats });
  tx.addOutput({ script: ANCHOR_SCRIPT, amount: 0n });
  return tx.id;
}

export function decodePsbt(b64: string): btc.Transaction {
  return btc.Transaction.fromPSBT(base64.decode(b64.trim()), {
    allowUnknownOutputs: true,
    allowUnknown: true,
    disableScriptCheck: true,
    allowUnknownInputs: true,
  });
}

/** An input's one tap leaf, after checking that it commits to its `witness_utxo`. */
export function inputLeaf(tx: btc.Transaction, index: number): Bytes {
  if (index < 0 || index >= tx.inputsLength) throw new Error(`input ${index} does not exist`);
  const input = tx.getInput(index);
  const leaves = input.tapLeafScript ?? [];
  if (leaves.length !== 1) throw new Error(`input ${index} has ${leaves.length} tap leaves, not 1`);
  const [cb, scriptVer] = leaves[0];
  const version = scriptVer[scriptVer.length - 1];
  const script = scriptVer.subarray(0, scriptVer.length - 1);
  if (version !== LEAF_VERSION || (cb.version & 0xfe) !== LEAF_VERSION) {
    throw new Error(`input ${index}: unsupported leaf version`);
  }
  const prev = input.witnessUtxo;
  if (!prev) throw new Error(`input ${index} has no witness_utxo`);
  let node = leafHash(script);
  for (const sibling of cb.merklePath) node = branch(node, sibling);
  const [key, parity] = outputKey(node, cb.internalKey);
  const p2tr = prev.script.length === 34 && prev.script[0] === 0x51 && prev.script[1] === 32;
  if (!p2tr || !equal(prev.script.subarray(2), key) || (cb.version & 1) !== parity) {
    throw new Error(`input ${index}: the control block does not commit its leaf to the witness_utxo`);
  }
  return script;
}

/** The BIP-341 script-path sighash (SIGHASH_DEFAULT) of input `index`. */
export function inputSighash(tx: btc.Transaction, index: number): { leaf: Bytes; leafHash: Bytes; sighash: Bytes } {
  const leaf = inputLeaf(tx, index);
  const scripts: Bytes[] = [];
  const amounts: bigint[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const w = tx.getInput(i).witnessUtxo;
    if (!w) throw new Error(`input ${i} has no witness_utxo`);
    scripts.push(w.script);
    amounts.push(w.amount);
  }
  const sighash = tx.preimageWitnessV1(index, scripts, btc.SigHash.DEFAULT, amounts, undefined, leaf, LEAF_VERSION);
  return { leaf, leafHash: leafHash(leaf), sighash };
}

/** Every signature already in the PSBT (e.g. the server's) verifies; returns the problems. */
export function checkPresentSignatures(tx: btc.Transaction, label: string): string[] {
  const why: string[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const sigs = tx.getInput(i).tapScriptSig ?? [];
    if (sigs.length === 0) continue;
    try {
      const { leaf, leafHash: lh, sighash } = inputSighash(tx, i);
      const signers = leafSigners(leaf);
      for (const [{ pubKey, leafHash: sigLeaf }, sig] of sigs) {
        if (!equal(sigLeaf, lh)) why.push(`${label} input ${i}: a signature is for another leaf`);
        else if (sig.length !== 64) why.push(`${label} input ${i}: a signature is not SIGHASH_DEFAULT`);
        else if (!signers.some((k) => equal(k, pubKey))) why.push(`${label} input ${i}: a signature by a key not in the leaf`);
        else if (!schnorr.verify(sig, sighash, pubKey)) why.push(`${label} input ${i}: a signature does not verify`);
      }
    } catch (e) {
      why.push(`${label}: ${(e as Error).message}`);
    }
  }
  return why;
}

/** Signers of input `index`'s leaf with no signature on it yet. */
export function missingSigners(tx: btc.Transaction, index: number): Bytes[] {
  const leaf = inputLeaf(tx, index);
  const lh = leafHash(leaf);
  const sigs = tx.getInput(index).tapScriptSig ?? [];
  return leafSigners(leaf).filter((k) => !sigs.some(([s]) => equal(s.pubKey, k) && equal(s.leafHash, lh)));
}

export function isAnchor(script: Bytes): boolean {
  return equal(script, ANCHOR_SCRIPT);
}

/** The "ARK" magic that starts an Ark extension's payload (ark-core `extension::MAGIC_BYTES`). */
const EXTENSION_MAGIC = [0x41, 0x52, 0x4b];

/**
 * Whether `script` is an Ark extension output — `OP_RETURN <push "ARK"…>`,
 * which carries the Arkade Asset packet (ark-core `extension::is_extension`).
 */
export function isExtension(script: Bytes): boolean {
  let ops: unknown[];
  try {
    ops = btc.Script.decode(script);
  } catch {
    return false;
  }
  const payload = ops[1];
  return (
    ops[0] === 'RETURN' &&
    payload instanceof Uint8Array &&
    payload.length >= EXTENSION_MAGIC.length &&
    EXTENSION_MAGIC.every((b, i) => payload[i] === b)
  );
}

export { hex, base64 };
