// The page's side of the reference DEX (examples/dex-bot) — PRD scenarios 3
// and 4. The DEX speaks its own small protocol, which the relay never sees:
// a 31530 request NIP-44 encrypted to the pool key, answered by a 31531
// (e-tag: the request). Its `swap` and `add_liquidity` requests carry the
// user's signed batch intent, which the page signed with
// `client.signIntent(content, false)`: authorised for the signing oracle but
// not published. The DEX adds its counter-intent and submits both in one
// `submit_batch`; the page's oracle (oracle.ts, batch rules) answers the
// relay's challenges, and one 31340 settles both intents.

import { SimplePool } from 'nostr-tools/pool';
import { verifyEvent, type Event, type EventTemplate } from 'nostr-tools/pure';
import { hex } from '@scure/base';
import type { RelayInfo } from './client';
import { capabilities, type Nip07 } from './nip07';
import type { IntentContent } from './oracle';

export const DEX_KIND = { REQUEST: 31530, RESPONSE: 31531 } as const;

/** The DEX's `info` answer. */
export interface PoolInfo {
  pool: string;
  btc: string;
  usd: string;
  lp: string;
  lp_ticker: string;
  reserves: { btc: number; usd: number };
  lp_supply: number;
  fee_bps: number;
}

/** The DEX's `quote` answer. */
export interface Quote {
  give: string;
  amount: number;
  receive: string;
  receive_amount: number;
}

/** The DEX refused (its message; the relay's code when the batch failed). */
export class DexRefusal extends Error {}

const now = () => Math.floor(Date.now() / 1000);
const randomId = () => hex.encode(crypto.getRandomValues(new Uint8Array(16)));

export class DexClient {
  private pool = new SimplePool();
  private waiters = new Map<string, (body: { result?: Record<string, unknown>; error?: string }) => void>();
  private closer?: { close(): void };

  constructor(
    readonly relays: string[],
    readonly signer: Nip07,
    readonly me: string,
    readonly dex: string,
  ) {}

  private cipher() {
    const c = capabilities(this.signer).nip44 ? this.signer.nip44 : this.signer.nip04;
    if (!c) throw new Error('the signer cannot encrypt (no nip44 or nip04)');
    return { c, scheme: capabilities(this.signer).nip44 ? 'nip44_v2' : 'nip04' };
  }

  /** Listens for the DEX's answers to this key. */
  start(): void {
    const filter = { kinds: [DEX_KIND.RESPONSE], authors: [this.dex], '#p': [this.me], since: now() - 5 };
    this.closer = this.pool.subscribeMany(this.relays, filter, {
      onevent: (ev: Event) => {
        if (!verifyEvent(ev) || ev.pubkey !== this.dex) return;
        const nip04 = ev.tags.some((t) => t[0] === 'encryption' && t[1] === 'nip04');
        const c = nip04 ? this.signer.nip04 : this.signer.nip44;
        void c
          ?.decrypt(this.dex, ev.content)
          .then((plain) => {
            const body = JSON.parse(plain);
            this.waiters.get(String(body.request_id))?.(body);
          })
          .catch(() => {});
      },
    });
  }

  stop(): void {
    this.closer?.close();
    this.pool.close(this.relays);
  }

  /** Sends one encrypted request and waits for its answer. */
  async request(body: Record<string, unknown>, timeoutMs = 180_000): Promise<Record<string, unknown>> {
    const { c, scheme } = this.cipher();
    const t: EventTemplate = {
      kind: DEX_KIND.REQUEST,
      created_at: now(),
      tags: [['p', this.dex], ['d', randomId()], ['encryption', scheme]],
      content: await c.encrypt(this.dex, JSON.stringify(body)),
    };
    const ev = await this.signer.signEvent(t);
    if (!verifyEvent(ev) || ev.pubkey !== this.me) throw new Error('the signer returned an invalid event');
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(ev.id);
        reject(new Error(`the DEX did not answer ${String(body.action)} within ${timeoutMs / 1000}s (is the bot running?)`));
      }, timeoutMs);
      this.waiters.set(ev.id, (r) => {
        clearTimeout(timer);
        this.waiters.delete(ev.id);
        if (r.result) resolve(r.result);
        else reject(new DexRefusal(`the DEX refused: ${r.error ?? 'no reason given'}`));
      });
    });
    await Promise.any(this.pool.publish(this.relays, ev));
    return answer;
  }

  async info(): Promise<PoolInfo> {
    return (await this.request({ action: 'info' }, 60_000)) as unknown as PoolInfo;
  }

  async quote(give: string, amount: number): Promise<Quote> {
    return (await this.request({ action: 'quote', give, amount }, 60_000)) as unknown as Quote;
  }
}

/** The user's side of a swap: pay `amount` of `give` to the pool, receive `receive`. */
export function swapIntent(info: RelayInfo, pool: string, q: Quote, ttl = 600): IntentContent {
  const pay = { recipient: pool, asset: q.give, amount: q.amount };
  return {
    v: 1,
    action_id: randomId(),
    type: 'atomic_swap',
    outputs: [pay, { recipient: info.pubkey, asset: 'gBTC', amount: info.transfer_fee, role: 'fee' }],
    my_leg: pay,
    counterparty_leg: { recipient: pool, asset: q.receive, amount: q.receive_amount },
    expires_at: now() + ttl,
  };
}

/** A deposit of `btc` gBTC: the gUSD that matches the reserves and the LP tokens due (the bot's own rounding). */
export function depositTerms(p: PoolInfo, btc: number): { usd: number; lp: number } {
  const [b, u, s] = [BigInt(p.reserves.btc), BigInt(p.reserves.usd), BigInt(p.lp_supply)];
  const usd = (u * BigInt(btc)) / b;
  const byBtc = (BigInt(btc) * s) / b;
  const byUsd = (usd * s) / u;
  return { usd: Number(usd), lp: Number(byBtc < byUsd ? byBtc : byUsd) };
}

/** The user's side of `add_liquidity`: gBTC and gUSD to the pool, LP tokens back. */
export function addLiquidityIntent(info: RelayInfo, p: PoolInfo, btc: number, usd: number, lp: number, ttl = 600): IntentContent {
  const pays = [
    { recipient: p.pool, asset: p.btc, amount: btc },
    { recipient: p.pool, asset: p.usd, amount: usd },
  ];
  return {
    v: 1,
    action_id: randomId(),
    type: 'add_liquidity',
    outputs: [...pays, { recipient: info.pubkey, asset: 'gBTC', amount: info.transfer_fee, role: 'fee' }],
    my_leg: pays,
    counterparty_leg: { recipient: p.pool, asset: p.lp, amount: lp },
    expires_at: now() + ttl,
  };
}
