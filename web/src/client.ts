// The dApp's side of the Ark Relay protocol (docs/protocol.md): relay facts
// from `GET /info`, encrypted service requests (31500 → 31501/31341),
// intents (31510) signed once by the user, and the signing oracle that
// answers every 31511 of an authorised session with a 31512 — after
// oracle.ts's checks, with `signSchnorr`, and without another prompt.
//
// Nostr I/O goes through nostr-tools' SimplePool; keys stay in the NIP-07
// signer. Every event from the relay is verified (id and signature) before
// it is read.

import { SimplePool } from 'nostr-tools/pool';
import { verifyEvent, type Event, type EventTemplate } from 'nostr-tools/pure';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hex } from '@scure/base';
import { parseServer, type Server, type ServerParams } from './ark';
import { capabilities, type Nip07 } from './nip07';
import {
  AssetBook,
  authorise,
  Refusal,
  verifyArkTx,
  verifyCheckpoints,
  type Authorised,
  type Challenge,
  type IntentContent,
  type OwnedVtxo,
  type ToSign,
  type VerifiedArkTx,
} from './oracle';

export const KIND = {
  INTENT: 31510,
  REQUEST: 31500,
  RESPONSE: 31501,
  CHALLENGE: 31511,
  SIGNING_RESPONSE: 31512,
  CONFIRMATION: 31340,
  FAILURE: 31341,
} as const;

/** `GET /info` (the fields this page uses). */
export interface RelayInfo {
  pubkey: string;
  relay_npub: string;
  relays: string[];
  transfer_fee: number;
  land_fee_ppm: number;
  ark: ServerParams | null;
}

export async function fetchInfo(base = ''): Promise<RelayInfo> {
  const r = await fetch(`${base}/info`);
  if (!r.ok) throw new Error(`GET /info: HTTP ${r.status}`);
  return (await r.json()) as RelayInfo;
}

/** A 31341's content. */
export interface Failure {
  status: 'failure';
  code: number;
  name?: string;
  message: string;
}

/** A VTXO entry of a 31340. */
export interface ConfirmedVtxo {
  vtxo: string;
  owner: string;
  asset?: string;
  amount: number;
  sats: number;
}

export interface Confirmation {
  v: number;
  ark_txid: string;
  intents: string[];
  spent: ConfirmedVtxo[];
  created: ConfirmedVtxo[];
  preimage?: string;
}

/** Raised when the relay refuses (a 31341, or a 31501 error). */
export class RelayRefusal extends Error {
  constructor(
    public code: number,
    public detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** What the page shows about each challenge it answers. */
export interface StepReport {
  intent: string;
  step: number;
  context: string;
  signed: string[];
  refused?: string;
}

/** Test-only hooks (set by the browser test's harness, never by the page). */
interface TestHooks {
  /** Alters a decrypted challenge before the oracle checks it (a lying relay). */
  tamperChallenge?: (ch: Challenge) => Challenge;
}

declare global {
  interface Window {
    __arkRelayTestHooks?: TestHooks;
  }
}

interface Session {
  authorised: Authorised;
  vtxos: OwnedVtxo[];
  book: AssetBook;
  step1?: VerifiedArkTx;
  answered: Set<number>;
}

type Scheme = 'nip44_v2' | 'nip04';

const now = () => Math.floor(Date.now() / 1000);

function randomId(): string {
  return hex.encode(crypto.getRandomValues(new Uint8Array(16)));
}

function eTag(ev: Event): string | undefined {
  return ev.tags.find((t) => t[0] === 'e')?.[1];
}

export interface ClientEvents {
  onConfirmation?: (c: Confirmation) => void;
  onStep?: (s: StepReport) => void;
  onLog?: (line: string) => void;
}

export class RelayClient {
  readonly server: Server;
  private pool = new SimplePool();
  private seen = new Set<string>();
  private sessions = new Map<string, Session>();
  private waiters = new Map<string, (ev: Event, plain: string) => void>();
  private outcomes = new Map<string, (r: Confirmation | Failure) => void>();
  private closers: { close(): void }[] = [];

  constructor(
    readonly info: RelayInfo,
    readonly signer: Nip07,
    readonly me: string,
    private events: ClientEvents = {},
  ) {
    if (!info.ark) throw new Error('the relay did not publish its Ark server parameters (/info has no "ark")');
    this.server = parseServer(info.ark);
  }

  get canSignArk(): boolean {
    return capabilities(this.signer).signSchnorr;
  }

  /** Subscribes to what the relay sends this key, and to every confirmation. */
  start(): void {
    const since = now() - 5;
    const onevent = (ev: Event) => void this.onEvent(ev);
    const relays = this.info.relays;
    this.closers.push(
      this.pool.subscribeMany(
        relays,
        { kinds: [KIND.RESPONSE, KIND.CHALLENGE, KIND.FAILURE], authors: [this.info.pubkey], '#p': [this.me], since },
        { onevent },
      ),
      this.pool.subscribeMany(relays, { kinds: [KIND.CONFIRMATION], authors: [this.info.pubkey], since }, { onevent }),
    );
  }

  stop(): void {
    for (const c of this.closers) c.close();
    this.pool.close(this.info.relays);
  }

  private log(line: string): void {
    this.events.onLog?.(line);
  }

  private scheme(): Scheme {
    return capabilities(this.signer).nip44 ? 'nip44_v2' : 'nip04';
  }

  private async encrypt(plain: string, scheme: Scheme): Promise<string> {
    const c = scheme === 'nip44_v2' ? this.signer.nip44 : this.signer.nip04;
    if (!c) throw new Error(`the signer cannot encrypt with ${scheme}`);
    return c.encrypt(this.info.pubkey, plain);
  }

  private async decrypt(ev: Event): Promise<[string, Scheme]> {
    const tag = ev.tags.find((t) => t[0] === 'encryption')?.[1];
    const scheme: Scheme =
      tag === 'nip04' ? 'nip04' : tag === 'nip44_v2' || tag === 'nip44' ? 'nip44_v2' : ev.content.includes('?iv=') ? 'nip04' : 'nip44_v2';
    const c = scheme === 'nip44_v2' ? this.signer.nip44 : this.signer.nip04;
    if (!c) throw new Error(`the signer cannot decrypt ${scheme}`);
    return [await c.decrypt(this.info.pubkey, ev.content), scheme];
  }

  private async publish(t: EventTemplate): Promise<Event> {
    const ev = await this.signer.signEvent(t);
    if (!verifyEvent(ev) || ev.pubkey !== this.me) throw new Error('the signer returned an invalid event');
    await Promise.any(this.pool.publish(this.info.relays, ev));
    return ev;
  }

  /** Sends an encrypted 31500 and waits for its 31501 result (or a refusal). */
  async request(content: Record<string, unknown>, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const scheme = this.scheme();
    const t: EventTemplate = {
      kind: KIND.REQUEST,
      created_at: now(),
      tags: [['p', this.info.pubkey], ['d', randomId()], ['encryption', scheme]],
      content: await this.encrypt(JSON.stringify(content), scheme),
    };
    const ev = await this.signer.signEvent(t);
    if (!verifyEvent(ev)) throw new Error('the signer returned an invalid event');
    const answer = new Promise<[Event, string]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(ev.id);
        reject(new Error(`no answer to ${String(content.action)} within ${timeoutMs / 1000}s`));
      }, timeoutMs);
      this.waiters.set(ev.id, (e, plain) => {
        clearTimeout(timer);
        this.waiters.delete(ev.id);
        resolve([e, plain]);
      });
    });
    await Promise.any(this.pool.publish(this.info.relays, ev));
    const [reply, plain] = await answer;
    const body = JSON.parse(plain);
    if (reply.kind === KIND.FAILURE) throw new RelayRefusal(body.code, body.message);
    if (body.error) throw new RelayRefusal(body.error.code, body.error.message);
    return { ...body.result, request_id: ev.id };
  }

  /** The key's VTXOs with their colour (`sync_state`). */
  async sync(): Promise<OwnedVtxo[]> {
    const r = await this.request({ action: 'sync_state' });
    return r.vtxos as OwnedVtxo[];
  }

  /**
   * Signs `content` as a 31510 (the user's one approval), authorises its
   * session against the current VTXOs and, unless `publish` is false (a
   * batch intent handed to a DEX), publishes it. Returns the signed event.
   */
  async signIntent(content: IntentContent, publish = true): Promise<Event> {
    if (!this.canSignArk) {
      throw new Error('this signer has no signSchnorr: the intent would be published but its ceremony could not be signed');
    }
    const vtxos = await this.sync();
    const book = new AssetBook(vtxos);
    const t: EventTemplate = {
      kind: KIND.INTENT,
      created_at: now(),
      tags: [['p', this.info.pubkey], ['d', content.action_id], ['expiration', String(content.expires_at)]],
      content: JSON.stringify(content),
    };
    const ev = await this.signer.signEvent(t);
    if (!verifyEvent(ev) || ev.pubkey !== this.me) throw new Error('the signer returned an invalid event');
    const authorised = authorise(ev.id, content, this.me, book);
    this.sessions.set(ev.id, { authorised, vtxos, book, answered: new Set() });
    if (publish) await Promise.any(this.pool.publish(this.info.relays, ev));
    return ev;
  }

  /** Resolves with the 31340 that completes `eventId`, or rejects with its final 31341. */
  outcome(eventId: string, timeoutMs = 180_000): Promise<Confirmation> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.outcomes.delete(eventId);
        reject(new Error(`no outcome for ${eventId.slice(0, 12)}… within ${timeoutMs / 1000}s`));
      }, timeoutMs);
      this.outcomes.set(eventId, (r) => {
        clearTimeout(timer);
        this.outcomes.delete(eventId);
        this.sessions.delete(eventId);
        if ('ark_txid' in r) resolve(r);
        else reject(new RelayRefusal(r.code, r.message));
      });
    });
  }

  private async onEvent(ev: Event): Promise<void> {
    if (this.seen.has(ev.id) || ev.pubkey !== this.info.pubkey) return;
    this.seen.add(ev.id);
    if (!verifyEvent(ev)) {
      this.log(`ignored an event with a bad signature (${ev.id.slice(0, 12)}…)`);
      return;
    }
    try {
      if (ev.kind === KIND.CONFIRMATION) {
        const c = JSON.parse(ev.content) as Confirmation;
        this.events.onConfirmation?.(c);
        for (const id of c.intents) this.outcomes.get(id)?.(c);
        return;
      }
      const [plain, scheme] = await this.decrypt(ev);
      const e = eTag(ev);
      if (ev.kind === KIND.RESPONSE && e) this.waiters.get(e)?.(ev, plain);
      else if (ev.kind === KIND.FAILURE && e) {
        const f = JSON.parse(plain) as Failure;
        // 7001: the relay keeps the request or intent and runs it later.
        if (f.code === 7001) {
          this.log(`relay is in read-only mode (7001): ${f.message}; waiting`);
          return;
        }
        this.waiters.get(e)?.(ev, plain);
        this.outcomes.get(e)?.(f);
      } else if (ev.kind === KIND.CHALLENGE) {
        await this.onChallenge(ev, plain, scheme);
      }
    } catch (err) {
      this.log(`could not read event ${ev.id.slice(0, 12)}…: ${(err as Error).message}`);
    }
  }

  /** The signing oracle: check, sign with signSchnorr, answer (PRD §11.4–11.6). */
  private async onChallenge(ev: Event, plain: string, scheme: Scheme): Promise<void> {
    let ch = JSON.parse(plain) as Challenge;
    const intent = eTag(ev) ?? ch.session_id;
    const session = this.sessions.get(ch.session_id);
    if (!session || intent !== ch.session_id) return; // not a session this page started
    if (session.answered.has(ch.step)) return;
    session.answered.add(ch.step);
    const hook = window.__arkRelayTestHooks?.tamperChallenge;
    if (hook) ch = hook(ch);
    const report: StepReport = { intent, step: ch.step, context: ch.human_readable_context ?? `Step ${ch.step}/2`, signed: [] };
    let toSign: ToSign[] = [];
    try {
      if (ch.expires_at && ch.expires_at < now()) throw new Refusal(['the challenge has expired']);
      const ctx = { server: this.server, me: this.me, relay: this.info.pubkey, vtxos: session.vtxos, book: session.book };
      if (ch.step === 1) {
        const { verified, toSign: t } = verifyArkTx(ctx, session.authorised, ch);
        session.step1 = verified;
        toSign = t;
      } else if (ch.step === 2) {
        if (!session.step1) throw new Refusal(['step 2 before I signed step 1']);
        toSign = verifyCheckpoints(ctx, session.step1, ch);
      } else throw new Refusal([`unknown step ${ch.step}`]);
    } catch (err) {
      report.refused = err instanceof Refusal ? err.message : `cannot check the challenge: ${(err as Error).message}`;
    }
    const signatures: { psbt_index: number; input_index: number; sig: string }[] = [];
    for (const s of report.refused === undefined ? toSign : []) {
      const sig = await (this.signer.signSchnorr as (h: string) => Promise<string>)(s.sighash);
      if (!schnorr.verify(hex.decode(sig), hex.decode(s.sighash), hex.decode(this.me))) {
        report.refused = 'the extension returned a signature that does not verify';
        break;
      }
      signatures.push({ psbt_index: s.psbt_index, input_index: s.input_index, sig });
      report.signed.push(s.sighash);
    }
    const response =
      report.refused === undefined
        ? { v: 1, session_id: ch.session_id, step: ch.step, signatures }
        : { v: 1, session_id: ch.session_id, step: ch.step, reject: report.refused.slice(0, 1000) };
    this.events.onStep?.(report);
    await this.publish({
      kind: KIND.SIGNING_RESPONSE,
      created_at: now(),
      tags: [['p', this.info.pubkey], ['e', intent], ['d', `${ch.session_id}:${ch.step}:response`], ['encryption', scheme]],
      content: await this.encrypt(JSON.stringify(response), scheme),
    });
  }
}

/** Balances per asset (ticker if known, else id) from a VTXO list. */
export function balances(vtxos: OwnedVtxo[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of vtxos) {
    if (!v.asset_id) continue;
    const k = v.ticker ?? v.asset_id;
    out.set(k, (out.get(k) ?? 0) + v.amount);
  }
  return out;
}

/** Builds intent content (docs/protocol.md kind 31510). */
export function transferIntent(info: RelayInfo, to: string, asset: string, amount: number, ttl = 600): IntentContent {
  return {
    v: 1,
    action_id: randomId(),
    type: 'p2p_transfer',
    outputs: [
      { recipient: to, asset, amount },
      { recipient: info.pubkey, asset: 'gBTC', amount: info.transfer_fee, role: 'fee' },
    ],
    expires_at: now() + ttl,
  };
}

/** The land fee: 0.1 % rounded up (docs/protocol.md "Fees"). */
export function landFee(info: RelayInfo, landed: number): number {
  return Math.ceil((landed * info.land_fee_ppm) / 1_000_000);
}

export function landIntent(info: RelayInfo, invoice: string, landed: number, ttl = 600): IntentContent {
  return {
    v: 1,
    action_id: randomId(),
    type: 'land_lightning',
    outputs: [
      { recipient: info.pubkey, asset: 'gBTC', amount: landed },
      { recipient: info.pubkey, asset: 'gBTC', amount: landFee(info, landed), role: 'fee' },
    ],
    memo: invoice,
    expires_at: now() + ttl,
  };
}
