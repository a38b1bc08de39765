// PRD scenarios 1, 2 and 5, a send through the JS signing oracle, a
// relay-tampered challenge and an extension without signSchnorr — in headless
// Chromium against a real `ark-relay dev` (in-process Nostr relay, arkd/lnd
// simulators over gRPC), the page served by dev itself. Each scenario saves a
// screenshot under target/browser-artifacts/ and asserts on page content.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { albyPage, launchBrowser, screenshot, startDev } from './harness.mjs';

const T = 120_000;
let dev;
let browser;
let alice;

before(async () => {
  dev = await startDev();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await dev?.stop();
});

/** The amount of `asset` the page's balance table shows. */
async function shown(page, asset = 'gBTC') {
  const cell = page.locator(`#balances tr[data-asset="${asset}"] .amount`);
  return (await cell.count()) ? Number(await cell.textContent()) : 0;
}

async function shownBecomes(page, want, asset = 'gBTC') {
  await page.waitForFunction(
    ([a, w]) => Number(document.querySelector(`#balances tr[data-asset="${a}"] .amount`)?.textContent ?? 0) === w,
    [asset, want],
    { timeout: T },
  );
}

test('scenario 5: connect with NIP-07; balances match sync_state and the ledger', async () => {
  assert.ok(dev.facts.web_url, 'dev serves the dApp (web_url in dev.json)');
  assert.match(dev.info.relay_npub, /^npub1/);
  alice = await albyPage(browser, dev.wallets.alice.secret);
  await alice.page.goto(dev.facts.web_url);
  await alice.page.locator('#relay').filter({ hasText: dev.info.relay_npub }).waitFor({ timeout: T });
  await alice.page.click('#connect');
  await alice.page.locator('#who').filter({ hasText: 'connected (extension)' }).waitFor({ timeout: T });
  await alice.page.locator('#balances tr[data-asset="gBTC"]').waitFor({ timeout: T });
  const ledger = await dev.balance(dev.wallets.alice.pubkey);
  assert.equal(ledger, 100_000);
  assert.equal(await shown(alice.page), ledger);
  assert.ok(alice.calls.some((c) => c.method === 'getPublicKey'));
  assert.ok(alice.calls.some((c) => c.method === 'nip44.encrypt'), 'sync_state goes out NIP-44 encrypted');
  assert.ok(await alice.page.locator('#capability').isHidden(), 'no warning for an Alby-like extension');
  await screenshot(alice.page, 'scenario5-connect');
});

test('send: the page answers both challenges with signSchnorr after its checks; bob is paid', async () => {
  const bob = dev.wallets.bob;
  const before = alice.calls.length;
  await alice.page.fill('#send-to', bob.npub);
  await alice.page.fill('#send-amount', '1000');
  await alice.page.click('#send');
  await alice.page.locator('#send-outcome.ok').waitFor({ timeout: T });
  assert.match(await alice.page.textContent('#send-outcome'), /sent 1000 gBTC \(fee 10 gBTC\): ark tx [0-9a-f]{64}/);
  const steps = alice.page.locator('#send-steps li.signed');
  assert.equal(await steps.count(), 2, 'Step 1/2 and Step 2/2 signed');
  assert.match(await steps.nth(0).textContent(), /^Step 1\/2.*checks passed/);
  assert.match(await steps.nth(1).textContent(), /^Step 2\/2.*checks passed/);
  // Every signSchnorr call signs a sighash the oracle recomputed and listed.
  const checked = (await steps.evaluateAll((lis) => lis.flatMap((li) => li.dataset.signed.split(','))));
  const signed = alice.calls.slice(before).filter((c) => c.method === 'signSchnorr').map((c) => c.args[0]);
  assert.ok(signed.length >= 2);
  assert.deepEqual([...signed].sort(), [...checked].sort());
  const intents = alice.calls.slice(before).filter((c) => c.method === 'signEvent' && c.args[0].kind === 31510);
  assert.equal(intents.length, 1, 'one approval: the intent');
  await shownBecomes(alice.page, 100_000 - 1010);
  assert.equal(await dev.balance(bob.pubkey), 1000);
  assert.equal(await dev.balance(dev.wallets.alice.pubkey), 100_000 - 1010);
  await screenshot(alice.page, 'send');
});

test('a relay-tampered challenge is refused; the page shows why and signs nothing', async () => {
  const before = alice.calls.length;
  await alice.page.evaluate((bob) => {
    // Test hook: the "relay" now claims bob's output carries 1 unit less.
    window.__arkRelayTestHooks = {
      tamperChallenge: (ch) => {
        for (const h of ch.payload_to_sign.colour) if (h.owner === bob) h.amount -= 1;
        return ch;
      },
    };
  }, dev.wallets.bob.pubkey);
  await alice.page.fill('#send-amount', '500');
  await alice.page.click('#send');
  await alice.page.locator('#send-outcome.err').waitFor({ timeout: T });
  const refused = alice.page.locator('#send-steps li.refused');
  assert.equal(await refused.count(), 1);
  assert.match(await refused.textContent(), /^Step 1\/2.*refused: .*outputs do not match my intent: no output pays 500 gBTC/);
  assert.match(await alice.page.textContent('#send-outcome'), /refused by the relay: \d{4} /);
  assert.equal(alice.calls.slice(before).filter((c) => c.method === 'signSchnorr').length, 0);
  await alice.page.evaluate(() => delete window.__arkRelayTestHooks);
  assert.equal(await dev.balance(dev.wallets.bob.pubkey), 1000, 'nothing moved');
  await screenshot(alice.page, 'send-tampered-refused');
});

test('an extension without signSchnorr: the page explains and publishes no intent', async () => {
  const nos2x = await albyPage(browser, dev.wallets.bob.secret, { withSchnorr: false });
  await nos2x.page.goto(dev.facts.web_url);
  await nos2x.page.click('#connect');
  await nos2x.page.locator('#balances tr[data-asset="gBTC"]').waitFor({ timeout: T });
  const warning = nos2x.page.locator('#capability');
  assert.ok(await warning.isVisible());
  assert.match(await warning.textContent(), /no signSchnorr.*will not publish an intent.*Alby/);
  assert.ok(await nos2x.page.locator('#send').isDisabled());
  assert.ok(await nos2x.page.locator('#withdraw').isDisabled());
  assert.ok(await nos2x.page.locator('#swap').isDisabled());
  assert.ok(await nos2x.page.locator('#add-liquidity').isDisabled());
  await nos2x.page.fill('#send-to', dev.wallets.alice.npub);
  await nos2x.page.locator('#send').click({ force: true, timeout: 2000 }).catch(() => {});
  assert.equal(nos2x.calls.filter((c) => c.method === 'signEvent' && c.args[0].kind === 31510).length, 0);
  assert.equal(nos2x.calls.filter((c) => c.method === 'signSchnorr').length, 0);
  await screenshot(nos2x.page, 'no-signschnorr');
  await nos2x.context.close();
});

test('scenario 1: deposit — the QR invoice is paid by sim-pay; the 31340 shows the new balance', async () => {
  const start = await shown(alice.page);
  await alice.page.fill('#deposit-amount', '50000');
  await alice.page.click('#deposit');
  await alice.page.locator('#deposit-out').waitFor({ state: 'visible', timeout: T });
  const invoice = await alice.page.inputValue('#deposit-invoice');
  assert.match(invoice, /^lnbcrt500u1/);
  assert.match(await alice.page.getAttribute('#deposit-qr', 'src'), /^data:image\/png;base64,/);
  await screenshot(alice.page, 'scenario1-invoice');
  await dev.cli('sim-pay', invoice);
  await alice.page.locator('#deposit-status.ok').waitFor({ timeout: T });
  assert.match(await alice.page.textContent('#deposit-status'), /deposited: 50000 gBTC/);
  await shownBecomes(alice.page, start + 50_000);
  assert.equal(await dev.balance(dev.wallets.alice.pubkey), start + 50_000);
  await screenshot(alice.page, 'scenario1-deposited');
});

test('scenario 2: withdraw to an invoice — preimage shown, balance down by amount + 0.1 %', async () => {
  const start = await shown(alice.page);
  const invoice = await dev.cli('sim-invoice', '20000');
  await alice.page.fill('#withdraw-invoice', invoice);
  await alice.page.locator('#withdraw-summary').filter({ hasText: 'amount 20000 gBTC + fee 20 gBTC' }).waitFor({ timeout: T });
  await alice.page.click('#withdraw');
  await alice.page.locator('#withdraw-outcome.ok').waitFor({ timeout: T });
  assert.match(await alice.page.textContent('#withdraw-outcome'), /paid 20000 sats; preimage [0-9a-f]{64}/);
  assert.equal(await alice.page.locator('#withdraw-steps li.signed').count(), 2);
  await shownBecomes(alice.page, start - 20_020);
  assert.equal(await dev.balance(dev.wallets.alice.pubkey), start - 20_020);
  await screenshot(alice.page, 'scenario2-withdrawn');
});
