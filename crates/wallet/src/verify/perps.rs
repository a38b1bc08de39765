//! Perpetual positions from the user's side (PRD §12 scenario 7,
//! `docs/protocol.md` "Conditional co-signing"). Pure, no I/O:
//!
//! - [`PositionView`]: what an `open_perp` commits the user to — side,
//!   leverage, margin, entry, the oracle she accepts and **the liquidation
//!   price** her signature pre-authorises — shown before she signs;
//! - [`position_script`]: the one script those terms imply for her position
//!   token: her two default leaves (exit, collaborative) plus exactly one
//!   conditional leaf `DEX + co-signer + server`, the co-signer being the
//!   relay's key tweaked with her `open_perp`'s id
//!   ([`ark_relay_ark::conditional`]);
//! - the batch hook: a challenge is signed only if the position token's
//!   output is at exactly that script ([`is_position_output`]); after
//!   settlement [`check_position_vtxo`] re-checks the VTXO's leaves.
//!
//! What the conditional leaf allows: the DEX and the relay together (plus the
//! server) may spend the position token VTXO, and the relay co-signs only a
//! liquidation whose witness is her own signed `open_perp` and a fresh price
//! of the oracle she named beyond the threshold. Her exit leaf stays: she can
//! always leave unilaterally.

use ark_relay_ark::check::checkpoint_txid;
use ark_relay_ark::conditional::{decode_conditional, PositionScript};
use ark_relay_ark::sign::input_leaf;
use ark_relay_ark::{ServerInfo, VtxoInput, VtxoScript};
use ark_relay_core::{AssetId, EventId, PubKey, Sats, VtxoId};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType};
use ark_relay_protocol::perps::{PerpTerms, Side, ValidTerms, BPS};
use bitcoin::TxOut;

use super::{AssetBook, AuthorisedIntent, Context, OwnedVtxo, Payment};

/// An integer price with `decimals` as text (`6543210`, 2 → `65432.10`).
pub fn format_price(price: u64, decimals: u8) -> String {
    if decimals == 0 {
        return price.to_string();
    }
    let d = u32::from(decimals);
    let unit = 10u128.pow(d);
    let p = u128::from(price);
    format!("{}.{:0width$}", p / unit, p % unit, width = d as usize)
}

/// The terms of an `open_perp` as the user should read them before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionView {
    /// The validated terms.
    pub terms: ValidTerms,
    /// Margin × leverage, in the margin asset's base units.
    pub notional: u128,
    /// The maintenance margin in margin units.
    pub maintenance: u128,
    /// The price at or beyond which the DEX may liquidate without asking.
    pub liquidation_price: u64,
}

impl PositionView {
    /// Validates `terms` and computes what they imply.
    pub fn new(terms: &PerpTerms) -> Result<Self, String> {
        let terms = terms.validate().map_err(|r| r.message)?;
        let notional = u128::from(terms.margin) * u128::from(terms.leverage);
        Ok(Self {
            maintenance: notional * u128::from(terms.maintenance_margin_bps) / u128::from(BPS),
            liquidation_price: terms.liquidation_price(),
            notional,
            terms,
        })
    }

    /// A human summary, one fact a line.
    pub fn lines(&self) -> Vec<String> {
        let t = &self.terms;
        let price = |p| format_price(p, t.decimals);
        let (side, cmp) = match t.side {
            Side::Long => ("long", "at or below"),
            Side::Short => ("short", "at or above"),
        };
        vec![
            format!("position   {side} {} at {}× leverage", t.pair, t.leverage),
            format!("margin     {} {} (paid to the DEX {})", t.margin, t.margin_asset, t.dex),
            format!("notional   {} {}", self.notional, t.margin_asset),
            format!("entry      {}", price(t.entry_price)),
            format!(
                "maintenance {} bps of notional = {} {}",
                t.maintenance_margin_bps, self.maintenance, t.margin_asset
            ),
            format!(
                "LIQUIDATION if {} is {cmp} {} by oracle {}: the DEX takes the margin to {} and burns your position token {} WITHOUT asking you again",
                t.pair,
                price(self.liquidation_price),
                t.oracle,
                t.insurance_fund,
                t.position_token
            ),
        ]
    }
}

/// The script of the position token created by the `open_perp` `open_perp`
/// signed by `me` with `terms`, under the relay `relay` and `server`.
pub fn position_script(
    me: &PubKey,
    terms: &ValidTerms,
    relay: &PubKey,
    server: &ServerInfo,
    open_perp: EventId,
) -> Result<VtxoScript, String> {
    PositionScript {
        user: *me.x_only(),
        dex: *terms.dex.x_only(),
        relay: *relay.x_only(),
        server: *server.signer(),
        exit_delay: server.unilateral_exit_delay(),
        open_perp,
    }
    .vtxo_script()
    .map_err(|e| e.to_string())
}

/// A position whose token a batch must pay at the position's script: my own
/// `open_perp` (`user` = me), or, for a DEX, the `open_perp` its counter-intent
/// answers (`user` = the trader; see `Wallet::sign_position_counter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionIssue {
    /// The position's owner (the author of the `open_perp`).
    pub user: PubKey,
    /// The `open_perp`'s id.
    pub open_perp: EventId,
    /// Its validated terms.
    pub terms: ValidTerms,
}

impl PositionIssue {
    /// The position of a signed `open_perp` event whose DEX is `dex`.
    pub fn of_event(open_perp: &nostr::Event, dex: &PubKey) -> Result<Self, String> {
        if open_perp.verify().is_err() {
            return Err("the open_perp's signature does not verify".into());
        }
        let c: IntentContent =
            serde_json::from_str(&open_perp.content).map_err(|e| format!("open_perp: {e}"))?;
        if IntentType::parse(&c.intent_type) != Some(IntentType::OpenPerp) {
            return Err("not an open_perp intent".into());
        }
        let terms = c
            .perp
            .ok_or("open_perp without its terms")?
            .validate()
            .map_err(|r| r.message)?;
        if terms.dex != *dex {
            return Err("the open_perp names another DEX".into());
        }
        Ok(Self {
            user: ark_relay_protocol::pubkey_from_nostr(&open_perp.pubkey)
                .ok_or("the open_perp's author is not a key")?,
            open_perp: ark_relay_protocol::event_id_from_nostr(&open_perp.id),
            terms,
        })
    }
}

/// Whether output `out`, hinted as `amount` of `asset` to `owner`, is the
/// position token of `intent`'s position, at exactly the script its terms
/// imply.
pub(super) fn is_position_output(
    ctx: &Context<'_>,
    intent: &AuthorisedIntent,
    owner: &PubKey,
    asset: AssetId,
    amount: u64,
    out: &TxOut,
) -> bool {
    let Some(p) = &intent.position else {
        return false;
    };
    if *owner != p.user || amount != 1 || ctx.assets.resolve(&p.terms.position_token) != Some(asset)
    {
        return false;
    }
    position_script(&p.user, &p.terms, ctx.relay, ctx.server, p.open_perp).is_ok_and(|s| {
        s.output_script(Sats::new(out.value.to_sat()), ctx.server.dust()) == out.script_pubkey
    })
}

/// Checks a position token VTXO the wallet holds: its leaves are exactly
/// the ones the signed terms imply (same leaves, same order), with one
/// conditional leaf naming the DEX of the terms.
pub fn check_position_vtxo(
    vtxo: &OwnedVtxo,
    me: &PubKey,
    terms: &ValidTerms,
    relay: &PubKey,
    server: &ServerInfo,
    open_perp: EventId,
) -> Result<(), String> {
    let want = position_script(me, terms, relay, server, open_perp)?;
    let got = VtxoScript::from_tapscripts(&vtxo.tapscripts)
        .map_err(|e| format!("position VTXO {}: {e}", vtxo.vtxo))?;
    if got.leaves() != want.leaves() {
        return Err(format!(
            "position VTXO {} is not at the script its terms imply",
            vtxo.vtxo
        ));
    }
    match decode_conditional(&got, server.signer()) {
        Some(c) if c.dex == *terms.dex.x_only() => Ok(()),
        _ => Err(format!(
            "position VTXO {} has no single conditional leaf of the DEX",
            vtxo.vtxo
        )),
    }
}

/// The position a DEX's `liquidate` intent spends (its witness's
/// `open_perp`, verified): the DEX's wallet signs that one foreign input, and
/// only through the conditional leaf naming the DEX's own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liquidation {
    /// The position VTXO (the intent's only `inputs` entry).
    pub position: VtxoId,
    /// Its owner (the author of the `open_perp`).
    pub user: PubKey,
    /// The `open_perp`'s id (the co-signer tweak).
    pub open_perp: EventId,
    /// The position token (burned by the liquidation).
    pub token: AssetId,
}

impl AuthorisedIntent {
    /// Resolves a `liquidate` intent the DEX `me` signed: its outputs are its
    /// payments (the margin to the insurance fund, the fee); its witness must
    /// verify and name `me` as the DEX; it names exactly one input.
    pub fn from_liquidation(
        intent_id: EventId,
        content: &IntentContent,
        me: &PubKey,
        book: &AssetBook,
    ) -> Result<Self, String> {
        if IntentType::parse(&content.intent_type) != Some(IntentType::Liquidate) {
            return Err(format!(
                "{:?} is not a liquidate intent",
                content.intent_type
            ));
        }
        let w = content
            .witness
            .as_ref()
            .ok_or("liquidate without a witness")?
            .verify()
            .map_err(|r| r.message)?;
        if w.terms.dex != *me {
            return Err("the witness's position belongs to another DEX".into());
        }
        let [position] = content.inputs.as_deref().unwrap_or_default() else {
            return Err("liquidate names exactly one input, the position VTXO".into());
        };
        let AssetRef::Id(token) = w.terms.position_token else {
            return Err("position_token must be an asset id".into());
        };
        let mut payments = Vec::with_capacity(content.outputs.len());
        for o in &content.outputs {
            let recipient: PubKey = o
                .recipient
                .parse()
                .map_err(|e| format!("recipient {:?}: {e}", o.recipient))?;
            if recipient == *me {
                return Err("an intent may not pay the wallet itself".into());
            }
            payments.push(Payment {
                recipient,
                asset: book
                    .resolve(&o.asset)
                    .ok_or_else(|| format!("unknown asset {} (no VTXO of it)", o.asset))?,
                amount: o.amount.positive("amount").map_err(|r| r.message)?,
            });
        }
        Ok(Self {
            intent_id,
            payments,
            receives: vec![],
            mint: vec![],
            batch: false,
            position: None,
            liquidation: Some(Liquidation {
                position: *position,
                user: w.user,
                open_perp: w.open_perp_id,
                token,
            }),
            one_step: content.one_step,
        })
    }
}

/// A foreign input the wallet signs: the position of its authorised
/// liquidation, spent through its checkpoint and its conditional leaf.
pub(super) struct PositionInput {
    /// The position VTXO.
    pub vtxo: VtxoId,
    /// Its sats (as the PSBT claims them: a wrong claim only makes arkd refuse).
    pub sats: u64,
}

/// Whether ark-tx input `i` of `psbt` is the position of `intent`'s
/// liquidation: it spends the checkpoint the server's rules build for that
/// VTXO under the position's script, through the conditional leaf whose
/// first key is mine.
pub(super) fn position_input(
    ctx: &Context<'_>,
    intent: &AuthorisedIntent,
    psbt: &bitcoin::Psbt,
    i: usize,
) -> Option<PositionInput> {
    let l = intent.liquidation.as_ref()?;
    let txin = psbt.unsigned_tx.input.get(i)?;
    let sats = psbt.inputs.get(i)?.witness_utxo.as_ref()?.value.to_sat();
    let p = PositionScript {
        user: *l.user.x_only(),
        dex: *ctx.me.x_only(),
        relay: *ctx.relay.x_only(),
        server: *ctx.server.signer(),
        exit_delay: ctx.server.unilateral_exit_delay(),
        open_perp: l.open_perp,
    };
    let (script, leaf) = (p.vtxo_script().ok()?, p.conditional_leaf().ok()?);
    let input = VtxoInput::new(l.position, Sats::new(sats), script, leaf.clone()).ok()?;
    let txid = checkpoint_txid(ctx.server, &input).ok()?;
    let spends = txin.previous_output.txid == txid && txin.previous_output.vout == 0;
    let through = matches!(input_leaf(psbt, i), Ok((got, _)) if got == leaf);
    (spends && through).then_some(PositionInput {
        vtxo: l.position,
        sats,
    })
}

/// The co-signer key of the position my authorised liquidation spends.
pub(super) fn liquidation_cosigner(
    ctx: &Context<'_>,
    intent: &AuthorisedIntent,
) -> Option<bitcoin::secp256k1::XOnlyPublicKey> {
    let l = intent.liquidation.as_ref()?;
    ark_relay_ark::conditional::cosigner_key(ctx.relay.x_only(), &l.open_perp).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relay_ark::RelativeLocktime;
    use ark_relay_core::{AssetId, Sats, VtxoId};
    use ark_relay_protocol::content::{AssetRef, WireAmount};
    use ark_relay_protocol::perps::{LiquidationOracle, MarginDeposit, PositionDetails};
    use ark_relay_protocol::pubkey_from_nostr;
    use nostr::Keys;

    fn pk() -> PubKey {
        pubkey_from_nostr(&Keys::generate().public_key()).expect("pk")
    }

    fn terms(dex: PubKey, token: AssetId) -> PerpTerms {
        PerpTerms {
            margin_deposit: MarginDeposit {
                asset: AssetRef::gbtc(),
                amount: WireAmount::new(1_000_000),
            },
            position_details: PositionDetails {
                side: Side::Long,
                leverage: 10,
                entry_price: WireAmount::new(6_543_210),
            },
            liquidation_oracle: LiquidationOracle {
                pubkey: pk(),
                pair: "BTC/USD".into(),
                decimals: 2,
            },
            maintenance_margin_bps: 50,
            dex,
            insurance_fund: dex,
            position_token: AssetRef::Id(token),
        }
    }

    #[test]
    fn the_view_shows_the_liquidation_price_before_signing() {
        let v = PositionView::new(&terms(pk(), AssetId::from_bytes([1; 32]))).expect("valid");
        assert_eq!(v.liquidation_price, 5_921_605);
        assert_eq!((v.notional, v.maintenance), (10_000_000, 50_000));
        let text = v.lines().join("\n");
        assert!(text.contains("long BTC/USD at 10×"), "{text}");
        assert!(text.contains("at or below 59216.05"), "{text}");
        let mut bad = terms(pk(), AssetId::from_bytes([1; 32]));
        bad.position_details.leverage = 0;
        assert!(PositionView::new(&bad).is_err());
        assert_eq!(format_price(7, 2), "0.07");
        assert_eq!(format_price(7, 0), "7");
    }

    #[test]
    fn only_the_implied_script_passes_the_vtxo_check() {
        let (me, dex, relay) = (pk(), pk(), pk());
        let server = ServerInfo::new(
            *pk().x_only(),
            *pk().x_only(),
            RelativeLocktime::blocks(144),
            RelativeLocktime::blocks(10),
            Sats::new(330),
            bitcoin::Network::Regtest,
        );
        let t = terms(dex, AssetId::from_bytes([2; 32]))
            .validate()
            .expect("valid");
        let id = EventId::from_bytes([9; 32]);
        let vtxo = |script: &VtxoScript| OwnedVtxo {
            vtxo: format!("{}:0", "11".repeat(32))
                .parse::<VtxoId>()
                .expect("id"),
            sats: 330,
            asset_id: Some(AssetId::from_bytes([2; 32])),
            ticker: None,
            amount: 1,
            expires_at: None,
            tapscripts: script.to_tapscripts(),
            locked: false,
        };
        let good = position_script(&me, &t, &relay, &server, id).expect("script");
        assert_eq!(
            check_position_vtxo(&vtxo(&good), &me, &t, &relay, &server, id),
            Ok(())
        );
        // Another open_perp's script (the co-signer is tweaked with its id).
        let other = position_script(&me, &t, &relay, &server, EventId::from_bytes([8; 32]))
            .expect("script");
        assert!(check_position_vtxo(&vtxo(&other), &me, &t, &relay, &server, id).is_err());
        // A plain VTXO of mine carries no conditional leaf.
        let plain = server.default_vtxo(&me);
        assert!(check_position_vtxo(&vtxo(&plain), &me, &t, &relay, &server, id).is_err());
        // A script with the leaf but another DEX.
        let mut t2 = t.clone();
        t2.dex = pk();
        let wrong_dex = position_script(&me, &t2, &relay, &server, id).expect("script");
        assert!(check_position_vtxo(&vtxo(&wrong_dex), &me, &t, &relay, &server, id).is_err());
    }

    #[test]
    fn a_dex_authorises_only_its_own_positions_liquidation() {
        use ark_relay_protocol::builders;
        use ark_relay_protocol::perps::{price_event_builder, OraclePriceContent, Witness};
        let (alice, dex, oracle) = (Keys::generate(), Keys::generate(), Keys::generate());
        let of = |k: &Keys| pubkey_from_nostr(&k.public_key()).expect("pk");
        let relay = pk();
        let token = AssetId::from_bytes([5; 32]);
        let mut t = terms(of(&dex), token);
        t.liquidation_oracle.pubkey = of(&oracle);
        let mut open = IntentContent::batch_leg(
            IntentType::OpenPerp,
            "open-1",
            &[(of(&dex), AssetRef::gbtc(), 1_000_000)],
            &[(of(&dex), AssetRef::Id(token), 1)],
            &relay,
            10,
            2_000_000_000,
        );
        open.perp = Some(t.clone());
        let open = builders::intent(&alice, &relay, &open).expect("open_perp");
        let price = price_event_builder(&OraclePriceContent {
            v: 1,
            pair: "BTC/USD".into(),
            price: WireAmount::new(5_800_000),
            decimals: 2,
            timestamp: 1_900_000_000,
            sources: vec!["a".into()],
        })
        .expect("price")
        .sign_with_keys(&oracle)
        .expect("sign");
        let position: VtxoId = format!("{}:0", "22".repeat(32)).parse().expect("id");
        let mut liq = IntentContent::batch_leg(
            IntentType::Liquidate,
            "liq-1",
            &[(pk(), AssetRef::gbtc(), 1_000_000)],
            &[],
            &relay,
            10,
            2_000_000_000,
        );
        liq.my_leg = None;
        liq.inputs = Some(vec![position]);
        liq.witness = Some(Witness::new(&open, &price));
        let mut book = AssetBook::default();
        book.insert("gBTC", AssetId::from_bytes([6; 32]));
        let id = EventId::from_bytes([1; 32]);
        let ok = AuthorisedIntent::from_intent(id, &liq, &of(&dex), &book).expect("the DEX's");
        let l = ok.liquidation.expect("liquidation");
        assert_eq!((l.position, l.user, l.token), (position, of(&alice), token));
        assert_eq!(
            l.open_perp,
            ark_relay_protocol::event_id_from_nostr(&open.id)
        );
        // Another DEX's wallet does not sign it.
        assert!(AuthorisedIntent::from_intent(id, &liq, &pk(), &book).is_err());
        // Two inputs: not a liquidation of one position.
        let mut two = liq.clone();
        two.inputs = Some(vec![position, position]);
        assert!(AuthorisedIntent::from_intent(id, &two, &of(&dex), &book).is_err());
        // The DEX's counter-intent knows the position it issues, for this DEX only.
        let issue = PositionIssue::of_event(&open, &of(&dex)).expect("issue");
        assert_eq!((issue.user, issue.terms.margin), (of(&alice), 1_000_000));
        assert!(PositionIssue::of_event(&open, &pk()).is_err());
        assert!(PositionIssue::of_event(&price, &of(&dex)).is_err());
    }
}
