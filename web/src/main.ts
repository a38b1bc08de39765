// The page: wires the DOM to RelayClient (client.ts). Each handler below is
// one PRD scenario as a dApp runs it — connect (5), deposit (1), send,
// withdraw (2), swap and add liquidity through a DEX bot (3, 4) — and
// docs/tutorial.md walks through this same code.

import './style.css';
import QRCode from 'qrcode';
import * as nip19 from 'nostr-tools/nip19';
import { invoiceSats } from './bolt11';
import {
  balances,
  fetchInfo,
  landFee,
  landIntent,
  RelayClient,
  RelayRefusal,
  transferIntent,
  type Confirmation,
  type RelayInfo,
  type StepReport,
} from './client';
import { addLiquidityIntent, depositTerms, DexClient, swapIntent, type PoolInfo } from './dex';
import { capabilities, demoSigner, NO_SIGN_SCHNORR, type Nip07 } from './nip07';
import type { OwnedVtxo } from './oracle';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let info: RelayInfo | undefined;
let client: RelayClient | undefined;
let vtxos = new Map<string, { owner: string; asset: string; amount: number; sats: number }>();
/** Asset id → ticker, learnt from sync_state (a 31340 may name assets by id). */
const tickers = new Map<string, string>();
/** Intent id → how many distinct 31340s named it (a batch settles in exactly one). */
const confirmationsOf = new Map<string, number>();
let dex: DexClient | undefined;

function log(line: string): void {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${line}`;
  $('log').prepend(li);
}

function setText(id: string, text: string, cls?: 'ok' | 'err'): void {
  const el = $(id);
  el.textContent = text;
  el.className = cls ?? '';
}

function errorText(e: unknown): string {
  if (e instanceof RelayRefusal) return `refused by the relay: ${e.code} ${e.detail}`;
  return (e as Error).message ?? String(e);
}

/** Renders the balances table from the VTXO map (kept live from 31340s). */
function render(): void {
  const totals = new Map<string, number>();
  for (const v of vtxos.values()) if (v.asset) totals.set(v.asset, (totals.get(v.asset) ?? 0) + v.amount);
  const body = $('balances').querySelector('tbody') as HTMLElement;
  body.replaceChildren(
    ...[...totals].map(([asset, amount]) => {
      const tr = document.createElement('tr');
      tr.dataset.asset = asset;
      tr.innerHTML = `<td></td><td class="amount"></td>`;
      (tr.children[0] as HTMLElement).textContent = asset;
      (tr.children[1] as HTMLElement).textContent = String(amount);
      return tr;
    }),
  );
  $('vtxos').replaceChildren(
    ...[...vtxos].map(([id, v]) => {
      const li = document.createElement('li');
      li.textContent = `${id} — ${v.amount} ${v.asset || '(uncoloured)'} on ${v.sats} sats`;
      return li;
    }),
  );
}

/** Scenario 5: the dashboard from `sync_state`. */
async function refresh(): Promise<void> {
  if (!client) return;
  const list: OwnedVtxo[] = await client.sync();
  for (const v of list) if (v.asset_id && v.ticker) tickers.set(v.asset_id, v.ticker);
  vtxos = new Map(list.map((v) => [v.vtxo, { owner: client!.me, asset: v.ticker ?? v.asset_id ?? '', amount: v.amount, sats: v.sats }]));
  render();
  log(`sync_state: ${list.length} VTXO(s); ${[...balances(list)].map(([a, n]) => `${n} ${a}`).join(', ') || 'no assets'}`);
}

/** Live balances: a 31340 spends and creates VTXOs; apply the ones of this key. */
function onConfirmation(c: Confirmation): void {
  if (!client) return;
  for (const id of c.intents) confirmationsOf.set(id, (confirmationsOf.get(id) ?? 0) + 1);
  const me = client.me;
  let touched = false;
  for (const s of c.spent) if (vtxos.delete(s.vtxo)) touched = true;
  let unknownAsset = false;
  for (const v of c.created) {
    if (v.owner !== me) continue;
    const asset = v.asset ? (tickers.get(v.asset) ?? v.asset) : '';
    unknownAsset ||= /^[0-9a-f]{64}$/.test(asset);
    vtxos.set(v.vtxo, { owner: me, asset, amount: v.amount, sats: v.sats });
    touched = true;
  }
  if (touched) {
    render();
    log(`31340 ${c.ark_txid.slice(0, 12)}… updated the balances`);
  }
  // A new asset (an LP token, say): sync_state names it.
  if (unknownAsset) void refresh().catch((e) => log(errorText(e)));
}

function stepList(id: string): (s: StepReport) => void {
  return (s) => {
    const li = document.createElement('li');
    if (s.refused !== undefined) {
      li.className = 'refused';
      li.textContent = `${s.context} — refused: ${s.refused}`;
    } else {
      li.className = 'signed';
      li.dataset.signed = s.signed.join(',');
      li.textContent = `${s.context} — checks passed, signed ${s.signed.length} input(s)`;
    }
    $(id).append(li);
  };
}

let onStep: (s: StepReport) => void = () => {};

async function connect(signer: Nip07, label: string): Promise<void> {
  if (!info) info = await fetchInfo();
  const me = (await signer.getPublicKey()).toLowerCase();
  client?.stop();
  client = new RelayClient(info, signer, me, { onConfirmation, onStep: (s) => onStep(s), onLog: log });
  client.start();
  setText('who', `connected (${label}): ${nip19.npubEncode(me)}`, 'ok');
  const caps = capabilities(signer);
  const cap = $('capability');
  cap.hidden = caps.signSchnorr;
  cap.textContent = caps.signSchnorr ? '' : NO_SIGN_SCHNORR;
  for (const b of document.querySelectorAll<HTMLButtonElement>('.needs-schnorr')) b.disabled = !caps.signSchnorr;
  $('wallet').hidden = false;
  await refresh();
}

function parseKey(text: string): string {
  const t = text.trim();
  if (t.startsWith('npub1')) {
    const d = nip19.decode(t);
    if (d.type !== 'npub') throw new Error('not an npub');
    return d.data;
  }
  if (!/^[0-9a-fA-F]{64}$/.test(t)) throw new Error('a recipient is an npub or 64 hex digits');
  return t.toLowerCase();
}

/** Scenario 1: lift over Lightning — invoice as QR and text, then the 31340. */
async function deposit(): Promise<void> {
  if (!client) return;
  const amount = Number(($('deposit-amount') as HTMLInputElement).value);
  setText('deposit-status', 'asking the relay for an invoice…');
  try {
    const r = await client.request({ action: 'lift_lightning', asset_id: 'gBTC', amount });
    const invoice = String(r.invoice);
    ($('deposit-invoice') as HTMLTextAreaElement).value = invoice;
    ($('deposit-qr') as HTMLImageElement).src = await QRCode.toDataURL(invoice.toUpperCase());
    $('deposit-out').hidden = false;
    setText('deposit-status', `pay this invoice for ${amount} sats (lifts are free); waiting for the payment…`);
    const c = await client.outcome(String(r.request_id), 15 * 60_000);
    const got = c.created.filter((v) => v.owner === client!.me).reduce((n, v) => n + v.amount, 0);
    setText('deposit-status', `deposited: ${got} gBTC (ark tx ${c.ark_txid.slice(0, 12)}…)`, 'ok');
  } catch (e) {
    setText('deposit-status', errorText(e), 'err');
  }
}

/** Send: one approval (the 31510), then the oracle answers both challenges. */
async function send(): Promise<void> {
  if (!client || !info) return;
  $('send-steps').replaceChildren();
  onStep = stepList('send-steps');
  try {
    const to = parseKey(($('send-to') as HTMLInputElement).value);
    const amount = Number(($('send-amount') as HTMLInputElement).value);
    const asset = ($('send-asset') as HTMLInputElement).value.trim() || 'gBTC';
    setText('send-outcome', 'sign the intent in your wallet…');
    const ev = await client.signIntent(transferIntent(info, to, asset, amount));
    setText('send-outcome', `intent ${ev.id.slice(0, 12)}… published; answering the relay's challenges…`);
    const c = await client.outcome(ev.id);
    setText('send-outcome', `sent ${amount} ${asset} (fee ${info.transfer_fee} gBTC): ark tx ${c.ark_txid}`, 'ok');
  } catch (e) {
    setText('send-outcome', errorText(e), 'err');
  }
}

function withdrawSummary(): number | undefined {
  if (!info) return undefined;
  const text = ($('withdraw-invoice') as HTMLTextAreaElement).value;
  if (!text.trim()) {
    setText('withdraw-summary', '');
    return undefined;
  }
  try {
    const sats = invoiceSats(text);
    const fee = landFee(info, sats);
    setText('withdraw-summary', `amount ${sats} gBTC + fee ${fee} gBTC (0.1 %) = ${sats + fee} gBTC`);
    return sats;
  } catch (e) {
    setText('withdraw-summary', (e as Error).message, 'err');
    return undefined;
  }
}

/** Scenario 2: land over Lightning — the preimage is the proof of payment. */
async function withdraw(): Promise<void> {
  if (!client || !info) return;
  $('withdraw-steps').replaceChildren();
  onStep = stepList('withdraw-steps');
  const sats = withdrawSummary();
  if (sats === undefined) return;
  try {
    const invoice = ($('withdraw-invoice') as HTMLTextAreaElement).value.trim();
    setText('withdraw-outcome', 'sign the withdrawal in your wallet…');
    const ev = await client.signIntent(landIntent(info, invoice, sats));
    setText('withdraw-outcome', `intent ${ev.id.slice(0, 12)}… published; the relay pays once the Ark tx is final…`);
    const c = await client.outcome(ev.id);
    setText('withdraw-outcome', `paid ${sats} sats; preimage ${c.preimage ?? '(none given)'}`, 'ok');
  } catch (e) {
    setText('withdraw-outcome', errorText(e), 'err');
  }
}

/** Connects to the DEX whose key is typed in, and shows its pool. */
async function loadPool(): Promise<PoolInfo> {
  if (!client || !info) throw new Error('connect first');
  const key = parseKey(($('dex-key') as HTMLInputElement).value);
  if (dex?.dex !== key) {
    dex?.stop();
    dex = new DexClient(info.relays, client.signer, client.me, key);
    dex.start();
  }
  const p = await dex.info();
  tickers.set(p.lp, p.lp_ticker);
  setText(
    'dex-pool',
    `pool ${p.reserves.btc} gBTC / ${p.reserves.usd} gUSD, ${p.lp_supply} ${p.lp_ticker} issued, fee ${p.fee_bps / 100} %`,
    'ok',
  );
  return p;
}

let perps: DexClient | undefined;

/** One position as the perps DEX lists it (`positions`). */
interface PositionRow {
  position: string;
  pair: string;
  side: string;
  leverage: number;
  margin: number;
  entry_price: number;
  liquidation_price: number;
  status: { state: string; ark_txid?: string };
  mark?: { price: number; pnl: string; equity: string } | null;
}

/** Read-only: my positions at the perps DEX whose key is typed in. */
async function loadPositions(): Promise<void> {
  if (!client || !info) throw new Error('connect first');
  const key = parseKey(($('perps-key') as HTMLInputElement).value);
  if (perps?.dex !== key) {
    perps?.stop();
    perps = new DexClient(info.relays, client.signer, client.me, key);
    perps.start();
  }
  const answer = await perps.request({ action: 'positions' }, 60_000);
  const rows = (answer.positions ?? []) as PositionRow[];
  const table = $('perps-list');
  table.replaceChildren();
  const head = ['position', 'pair', 'side', 'leverage', 'margin', 'entry', 'liquidation', 'mark', 'pnl', 'status'];
  const tr = (cells: string[], tag: 'th' | 'td') => {
    const row = document.createElement('tr');
    for (const c of cells) {
      const cell = document.createElement(tag);
      cell.textContent = c;
      row.append(cell);
    }
    table.append(row);
  };
  tr(head, 'th');
  for (const p of rows) {
    tr(
      [
        `${p.position.slice(0, 12)}…`,
        p.pair,
        p.side,
        `${p.leverage}×`,
        String(p.margin),
        String(p.entry_price),
        String(p.liquidation_price),
        p.mark ? String(p.mark.price) : '-',
        p.mark ? p.mark.pnl : '-',
        p.status.ark_txid ? `${p.status.state} (ark tx ${p.status.ark_txid.slice(0, 12)}…)` : p.status.state,
      ],
      'td',
    );
  }
  if (rows.length === 0) tr(['no positions'], 'td');
}

/** Shows a batch's outcome: its one 31340 names the user's intent and the DEX's. */
function settledText(id: string, ev: string, what: string, c: Confirmation): void {
  const el = $(id);
  el.dataset.intent = ev;
  el.dataset.intents = String(c.intents.length);
  el.dataset.confirmations = String(confirmationsOf.get(ev) ?? 0);
  setText(id, `${what} in one Ark transaction with the DEX's intent (${c.intents.length} intents, one 31340): ark tx ${c.ark_txid}`, 'ok');
}

/** Scenario 3: quote, sign the swap intent (not published), hand it to the DEX. */
async function swap(): Promise<void> {
  if (!client || !info) return;
  $('swap-steps').replaceChildren();
  onStep = stepList('swap-steps');
  try {
    const p = await loadPool();
    const give = ($('swap-give') as HTMLSelectElement).value === 'gUSD' ? p.usd : p.btc;
    const amount = Number(($('swap-amount') as HTMLInputElement).value);
    const q = await dex!.quote(give, amount);
    const name = (a: string) => (a === p.btc ? 'gBTC' : 'gUSD');
    setText('swap-quote', `${amount} ${name(q.give)} buys ${q.receive_amount} ${name(q.receive)} (fee ${info.transfer_fee} gBTC)`);
    setText('swap-outcome', 'sign the swap in your wallet…');
    const ev = await client.signIntent(swapIntent(info, p.pool, q), false);
    const settled = client.outcome(ev.id);
    settled.catch(() => {}); // awaited below, after the DEX answers
    setText('swap-outcome', `intent ${ev.id.slice(0, 12)}… handed to the DEX; answering the relay's challenges…`);
    await dex!.request({ action: 'swap', intent: ev });
    const c = await settled;
    settledText('swap-outcome', ev.id, `swapped ${amount} ${name(q.give)} for ${q.receive_amount} ${name(q.receive)}`, c);
    await loadPool();
  } catch (e) {
    setText('swap-outcome', errorText(e), 'err');
  }
}

/** Scenario 4: deposit gBTC and the matching gUSD, receive the LP tokens the DEX mints. */
async function addLiquidity(): Promise<void> {
  if (!client || !info) return;
  $('liquidity-steps').replaceChildren();
  onStep = stepList('liquidity-steps');
  try {
    const p = await loadPool();
    const btc = Number(($('liquidity-btc') as HTMLInputElement).value);
    const { usd, lp } = depositTerms(p, btc);
    setText('liquidity-terms', `deposit ${btc} gBTC + ${usd} gUSD for ${lp} ${p.lp_ticker} (fee ${info.transfer_fee} gBTC)`);
    setText('liquidity-outcome', 'sign the deposit in your wallet…');
    const ev = await client.signIntent(addLiquidityIntent(info, p, btc, usd, lp), false);
    const settled = client.outcome(ev.id);
    settled.catch(() => {});
    setText('liquidity-outcome', `intent ${ev.id.slice(0, 12)}… handed to the DEX; answering the relay's challenges…`);
    await dex!.request({ action: 'add_liquidity', intent: ev });
    const c = await settled;
    settledText('liquidity-outcome', ev.id, `deposited ${btc} gBTC + ${usd} gUSD for ${lp} ${p.lp_ticker}`, c);
    await loadPool();
  } catch (e) {
    setText('liquidity-outcome', errorText(e), 'err');
  }
}

function on(id: string, f: () => Promise<void>): void {
  $(id).addEventListener('click', () => {
    const b = $(id) as HTMLButtonElement;
    b.disabled = true;
    f()
      .catch((e) => log(errorText(e)))
      .finally(() => {
        b.disabled = b.classList.contains('needs-schnorr') && !(client?.canSignArk ?? false);
      });
  });
}

async function main(): Promise<void> {
  try {
    info = await fetchInfo();
    setText('relay', `relay ${info.relay_npub} on ${info.relays.join(', ')}; fee ${info.transfer_fee} gBTC per transfer`);
  } catch (e) {
    setText('relay', `cannot read /info: ${errorText(e)}`, 'err');
  }
  on('connect', async () => {
    if (!window.nostr) {
      setText('who', 'no Nostr extension found (window.nostr): install Alby, or use the demo signer', 'err');
      return;
    }
    await connect(window.nostr, 'extension').catch((e) => setText('who', errorText(e), 'err'));
  });
  on('use-demo', async () => {
    const typed = ($('demo-key') as HTMLInputElement).value.trim();
    const saved = localStorage.getItem('ark-relay-demo-key') ?? undefined;
    const { signer, secretHex } = demoSigner(typed || saved);
    localStorage.setItem('ark-relay-demo-key', secretHex);
    await connect(signer, 'demo signer, key kept in this page').catch((e) => setText('who', errorText(e), 'err'));
  });
  // `ark-relay dev`'s banner links the page with its demo DEX: /app/?dex=<npub>.
  const dexParam = new URLSearchParams(location.search).get('dex');
  if (dexParam) ($('dex-key') as HTMLInputElement).value = dexParam;
  on('deposit', deposit);
  on('send', send);
  on('withdraw', withdraw);
  on('dex-load', async () => void (await loadPool().catch((e) => setText('dex-pool', errorText(e), 'err'))));
  on('perps-load', async () => void (await loadPositions().catch((e) => setText('who', errorText(e), 'err'))));
  on('swap', swap);
  on('add-liquidity', addLiquidity);
  $('withdraw-invoice').addEventListener('input', () => void withdrawSummary());
}

void main();
