//! The DEX's open quotes and the position tokens no position holds. Each
//! token is an Arkade asset the DEX issued on Ark (its control VTXO stays
//! with the DEX), so tokens are reused before a new genesis: a requester's
//! unopened quote passes its token to her next quote, expired quotes'
//! tokens and those of ended positions (burned, supply 0) serve later
//! quotes. The DEX then holds one control VTXO per open position or quote,
//! which the relay bounds (`issue_asset_per_key`).

use std::collections::HashMap;

use ark_relay_core::{AssetId, PubKey};
use ark_relay_protocol::perps::PerpTerms;

/// Terms quoted to `user`, with their token.
pub(crate) struct Quote {
    pub(crate) user: PubKey,
    pub(crate) terms: PerpTerms,
    pub(crate) token: Token,
    pub(crate) expires: tokio::time::Instant,
}

/// A position token the DEX issued (it holds its control asset) and no
/// position holds.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) id: AssetId,
    pub(crate) ticker: String,
    /// Whether the DEX holds its one unit (fresh from the genesis); else
    /// its supply is 0 (its last position ended) and an opening mints it.
    pub(crate) unit_held: bool,
}

/// Open quotes by token, and tokens no position or quote holds (expired
/// quotes', ended positions'), reused before a new genesis: the DEX holds
/// one control VTXO per token, and the relay bounds how many a key may hold
/// (`issue_asset_per_key`).
#[derive(Default)]
pub(crate) struct Quotes {
    pub(crate) open: HashMap<AssetId, Quote>,
    pub(crate) spare: Vec<Token>,
}

impl Quotes {
    /// A token for `user`'s next quote: her own unopened quote's, else a
    /// spare one (expired quotes' tokens become spare first).
    pub(crate) fn reusable(&mut self, user: &PubKey, now: tokio::time::Instant) -> Option<Token> {
        let done: Vec<AssetId> = self
            .open
            .iter()
            .filter(|(_, q)| q.user == *user || q.expires < now)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(q) = self.open.remove(&id) {
                self.spare.push(q.token);
            }
        }
        self.spare.pop()
    }
}

/// A position token's ticker: this prefix and 12 hex digits.
pub(crate) const POSITION_TICKER_PREFIX: &str = "P";

/// Whether `t` is a position token's ticker.
pub(crate) fn is_position_ticker(t: &str) -> bool {
    t.strip_prefix(POSITION_TICKER_PREFIX)
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relay_protocol::content::{AssetRef, WireAmount};
    use ark_relay_protocol::perps::{
        LiquidationOracle, MarginDeposit, PerpTerms, PositionDetails, Side,
    };
    use std::time::Duration;

    fn key(b: u8) -> PubKey {
        let sk = nostr::SecretKey::from_slice(&[b; 32]).expect("key");
        ark_relay_protocol::pubkey_from_nostr(&nostr::Keys::new(sk).public_key()).expect("pk")
    }

    fn token(b: u8) -> Token {
        Token {
            id: AssetId::from_bytes([b; 32]),
            ticker: format!("P{}", "0".repeat(11) + &b.to_string()),
            unit_held: true,
        }
    }

    fn quote(user: PubKey, t: Token, expires: tokio::time::Instant) -> Quote {
        Quote {
            user,
            terms: PerpTerms {
                margin_deposit: MarginDeposit {
                    asset: AssetRef::Id(AssetId::from_bytes([9; 32])),
                    amount: WireAmount::new(1),
                },
                position_details: PositionDetails {
                    side: Side::Long,
                    leverage: 2,
                    entry_price: WireAmount::new(100),
                },
                liquidation_oracle: LiquidationOracle {
                    pubkey: user,
                    pair: "BTC/USD".into(),
                    decimals: 2,
                },
                maintenance_margin_bps: 50,
                dex: user,
                insurance_fund: user,
                position_token: AssetRef::Id(t.id),
            },
            token: t,
            expires,
        }
    }

    #[test]
    fn a_token_is_reused_from_her_own_quote_or_an_expired_one_never_from_a_live_quote() {
        let (alice, bob) = (key(1), key(2));
        let now = tokio::time::Instant::now();
        let later = now + Duration::from_secs(60);
        let mut q = Quotes::default();
        q.open.insert(token(1).id, quote(bob, token(1), later));
        assert!(
            q.reusable(&alice, now).is_none(),
            "bob's live quote stays his"
        );
        q.open.insert(token(2).id, quote(alice, token(2), later));
        assert_eq!(q.reusable(&alice, now).map(|t| t.id), Some(token(2).id));
        assert!(q.open.contains_key(&token(1).id) && q.open.len() == 1);
        let after = later + Duration::from_secs(1);
        assert_eq!(q.reusable(&alice, after).map(|t| t.id), Some(token(1).id));
        assert!(q.open.is_empty() && q.spare.is_empty());
    }

    #[test]
    fn position_tickers_are_p_and_12_hex_digits() {
        assert!(is_position_ticker("P0123456789ab"));
        assert!(!is_position_ticker("gLP"));
        assert!(!is_position_ticker("P0123"));
        assert!(!is_position_ticker("Q0123456789ab"));
    }
}
