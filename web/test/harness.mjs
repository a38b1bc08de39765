// The browser test's harness: starts `ark-relay dev` on free ports in a temp
// data dir, waits for it by polling dev.json and GET /info (never sleeping),
// drives headless Chromium (Debian's `chromium`, through playwright-core),
// and injects a `window.nostr` that behaves like Alby — getPublicKey,
// signEvent, nip04/nip44 encrypt/decrypt and signSchnorr — backed by a test
// key in Node (nostr-tools, @noble/curves), recording every call.

import { spawn, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, existsSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { finalizeEvent, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hex } from '@scure/base';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN = process.env.ARK_WEB_TEST_BIN ?? path.join(ROOT, 'target', 'debug', 'ark-relay');
/** The reference DEX (examples/dex-bot), built beside the relay. */
export const DEX_BIN = process.env.ARK_WEB_TEST_DEX_BIN ?? path.join(path.dirname(BIN), 'dex-bot');
export const ARTIFACTS = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'browser-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Waits until `check()` returns a truthy value, polling; throws with `what` after `ms`. */
export async function until(what, check, ms = 120_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A running `ark-relay dev`. */
export async function startDev() {
  mkdirSync(ARTIFACTS, { recursive: true });
  if (!existsSync(BIN)) throw new Error(`${BIN} not found: run \`cargo build -p ark-relay\` first (or set ARK_WEB_TEST_BIN)`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ark-relay-web-'));
  const logFile = path.join(ARTIFACTS, 'ark-relay-dev.log');
  const out = createWriteStream(logFile);
  const child = spawn(BIN, ['dev', '--data-dir', dataDir, '--http-port', '0'], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn,ark_relay=info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  const devJson = path.join(dataDir, 'dev.json');
  const facts = await until(
    'dev.json',
    () => {
      if (exited) {
        throw Object.assign(new Error(`ark-relay dev exited (${JSON.stringify(exited)}); see ${logFile}`), { fatal: true });
      }
      return existsSync(devJson) && JSON.parse(readFileSync(devJson, 'utf8'));
    },
    180_000,
  );
  const info = await until('GET /info', async () => {
    const r = await fetch(`${facts.http_url}/info`);
    return r.ok && (await r.json());
  });
  const key = (name) => readFileSync(path.join(dataDir, 'wallets', `${name}.key`), 'utf8').trim();
  const wallets = Object.fromEntries(facts.wallets.map((w) => [w.name, { ...w, secret: key(w.name) }]));
  return {
    facts,
    info,
    dataDir,
    devJson,
    wallets,
    async balance(pubkey, ticker = 'gBTC') {
      const r = await fetch(`${facts.http_url}/balances/${pubkey}`);
      const b = await r.json();
      return b.assets.find((a) => a.ticker === ticker)?.amount ?? 0;
    },
    /**
     * Every 31340 the relay published that names `intentId`, read from the
     * Nostr relay with a plain NIP-01 REQ — through `page`, since Node 20 has
     * no WebSocket — and verified here.
     */
    async confirmationsOf(page, intentId) {
      const events = await page.evaluate(
        ([url, author]) =>
          new Promise((resolve, reject) => {
            const ws = new WebSocket(url);
            const got = [];
            const timer = setTimeout(() => reject(new Error('no EOSE from the Nostr relay')), 30_000);
            ws.onopen = () => ws.send(JSON.stringify(['REQ', 'c', { kinds: [31340], authors: [author] }]));
            ws.onerror = () => reject(new Error(`cannot reach ${url}`));
            ws.onmessage = (m) => {
              const msg = JSON.parse(m.data);
              if (msg[0] === 'EVENT') got.push(msg[2]);
              if (msg[0] === 'EOSE') {
                clearTimeout(timer);
                ws.close();
                resolve(got);
              }
            };
          }),
        [facts.nostr_relays[0], info.pubkey],
      );
      return events.filter((e) => verifyEvent(e) && JSON.parse(e.content).intents.includes(intentId));
    },
    async cli(...args) {
      const { stdout } = await promisify(execFile)(BIN, [...args, '--dev-json', devJson], { timeout: 120_000 });
      return stdout.trim();
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await until('ark-relay dev to stop', () => exited, 30_000).catch(() => child.kill('SIGKILL'));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/**
 * A page whose `window.nostr` behaves like Alby for the key `secretHex`.
 * `withSchnorr: false` gives an extension without signSchnorr (like nos2x).
 * Every call is recorded in `calls` as {method, args}.
 */
export async function albyPage(browser, secretHex, { withSchnorr = true } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const sk = hex.decode(secretHex);
  const pk = getPublicKey(sk);
  const calls = [];
  const handlers = {
    getPublicKey: async () => pk,
    signEvent: async (ev) => finalizeEvent(ev, sk),
    'nip04.encrypt': async (peer, text) => nip04.encrypt(sk, peer, text),
    'nip04.decrypt': async (peer, text) => nip04.decrypt(sk, peer, text),
    'nip44.encrypt': async (peer, text) => nip44.encrypt(text, nip44.getConversationKey(sk, peer)),
    'nip44.decrypt': async (peer, text) => nip44.decrypt(text, nip44.getConversationKey(sk, peer)),
    signSchnorr: async (hash) => hex.encode(schnorr.sign(hex.decode(hash), sk)),
  };
  await page.exposeFunction('__albyCall', async (method, args) => {
    calls.push({ method, args });
    if (method === 'signSchnorr' && !withSchnorr) throw new Error('not supported');
    return handlers[method](...args);
  });
  await page.addInitScript((schnorrToo) => {
    const call = (m) => (...args) => window.__albyCall(m, args);
    window.nostr = {
      getPublicKey: call('getPublicKey'),
      signEvent: call('signEvent'),
      nip04: { encrypt: call('nip04.encrypt'), decrypt: call('nip04.decrypt') },
      nip44: { encrypt: call('nip44.encrypt'), decrypt: call('nip44.decrypt') },
    };
    if (schnorrToo) window.nostr.signSchnorr = call('signSchnorr');
  }, withSchnorr);
  page.on('pageerror', (e) => calls.push({ method: 'pageerror', args: [String(e)] }));
  return { page, context, calls, pubkey: pk };
}

export async function screenshot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Starts `ark-relay-dex-bot --dev-json` on the DEX demo `dev` seeded; resolves
 * once it logs that it serves (its subscription catches up on anything
 * published since).
 */
export async function startDexBot(dev) {
  if (!existsSync(DEX_BIN)) throw new Error(`${DEX_BIN} not found: run \`cargo build -p ark-relay-dex-bot\` first (binary dex-bot)`);
  const logFile = path.join(ARTIFACTS, 'dex-bot.log');
  const out = createWriteStream(logFile);
  const child = spawn(DEX_BIN, ['--dev-json', dev.devJson], {
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.stdout.pipe(out);
  child.stderr.on('data', (d) => {
    log += d;
    out.write(d);
  });
  await until('the DEX bot to serve', () => {
    if (exited) throw Object.assign(new Error(`dex-bot exited (${JSON.stringify(exited)}); see ${logFile}`), { fatal: true });
    return log.includes('dex-bot serving');
  }, 60_000);
  return {
    async stop() {
      if (!exited) {
        child.kill('SIGINT');
        await until('dex-bot to stop', () => exited, 15_000).catch(() => child.kill('SIGKILL'));
      }
    },
  };
}
