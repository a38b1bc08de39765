// The user's key, as a NIP-07 browser extension exposes it (`window.nostr`),
// plus Alby's non-standard `signSchnorr(hash)`, and a clearly labelled demo
// signer (a key kept in this page) for trying the relay without an extension.
//
// The page never sees the extension's secret key: it asks for the public key,
// event signatures, NIP-44/NIP-04 encryption, and BIP-340 signatures over
// sighashes the oracle (oracle.ts) has checked.

import { finalizeEvent, generateSecretKey, getPublicKey, type EventTemplate, type VerifiedEvent } from 'nostr-tools/pure';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import { schnorr } from '@noble/curves/secp256k1.js';
import { hex } from '@scure/base';

export interface Cipher {
  encrypt(pubkey: string, plaintext: string): Promise<string>;
  decrypt(pubkey: string, ciphertext: string): Promise<string>;
}

/** NIP-07 (`getPublicKey`, `signEvent`, `nip04`, `nip44`) and Alby's `signSchnorr`. */
export interface Nip07 {
  getPublicKey(): Promise<string>;
  signEvent(event: EventTemplate): Promise<VerifiedEvent>;
  nip04?: Cipher;
  nip44?: Cipher;
  /** Alby: a BIP-340 signature by the Nostr key over a 32-byte hash (hex in, hex out). */
  signSchnorr?(hash: string): Promise<string>;
}

declare global {
  interface Window {
    nostr?: Nip07;
  }
}

/** What a signer can do, and what the page tells the user about it. */
export interface Capabilities {
  /** Can sign Ark inputs: send, withdraw, swap. */
  signSchnorr: boolean;
  nip44: boolean;
  nip04: boolean;
}

export function capabilities(s: Nip07): Capabilities {
  return {
    signSchnorr: typeof s.signSchnorr === 'function',
    nip44: typeof s.nip44?.encrypt === 'function' && typeof s.nip44?.decrypt === 'function',
    nip04: typeof s.nip04?.encrypt === 'function' && typeof s.nip04?.decrypt === 'function',
  };
}

/** Shown when the extension cannot sign sighashes (no `signSchnorr`). */
export const NO_SIGN_SCHNORR =
  'Your Nostr extension has no signSchnorr: it can log you in, show balances and take deposits, ' +
  'but it cannot sign the Ark transactions of a send, a withdrawal or a swap, so this page will not publish ' +
  'an intent it could not complete. Alby (getalby.com) has signSchnorr; nos2x and most NIP-46 remote signers do not. ' +
  'Use Alby, or the demo signer below to try the relay.';

/**
 * A signer whose key lives in this page (localStorage): for `ark-relay dev`
 * only. Anyone with access to this browser profile can read the key.
 */
export function demoSigner(secretHex?: string): { signer: Nip07; secretHex: string } {
  const sk = secretHex ? hex.decode(secretHex.trim().toLowerCase()) : generateSecretKey();
  if (sk.length !== 32) throw new Error('a secret key is 64 hex digits');
  const pk = getPublicKey(sk);
  const signer: Nip07 = {
    getPublicKey: async () => pk,
    signEvent: async (ev) => finalizeEvent(ev, sk),
    nip04: {
      encrypt: async (peer, text) => nip04.encrypt(sk, peer, text),
      decrypt: async (peer, text) => nip04.decrypt(sk, peer, text),
    },
    nip44: {
      encrypt: async (peer, text) => nip44.encrypt(text, nip44.getConversationKey(sk, peer)),
      decrypt: async (peer, text) => nip44.decrypt(text, nip44.getConversationKey(sk, peer)),
    },
    signSchnorr: async (hash) => hex.encode(schnorr.sign(hex.decode(hash), sk)),
  };
  return { signer, secretHex: hex.encode(sk) };
}
