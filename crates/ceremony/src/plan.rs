//! The one planner: coin selection and output layout of an Ark off-chain
//! transaction with any number of wallet parties (pure).
//!
//! - **Parties** (0 for a relay-issued transaction, 1 for a transfer or a
//!   land, n for an atomic batch). Each party's coloured VTXOs cover what it
//!   draws (its payments and fee, minus what it mints), largest first, or
//!   exactly the inputs its intent names; change per asset returns to it and
//!   its surplus carrier sats stay with it.
//! - **The relay** covers every output's carrier shortfall once, for the
//!   whole transaction, from its uncoloured inventory, and pays the outputs of
//!   a relay-issued transaction (a lift's or a refund's new VTXO). It always
//!   adds one inventory input when it has one (the *recovery input*: with it
//!   the relay can prove ownership to arkd's `GetPendingTx` and find the
//!   transaction alone after a lost `SubmitTx` answer); the remainder returns
//!   to the relay.
//! - **Burns** strip colour from what a recipient receives (the ledger
//!   records no colour; the hint still shows the payment).
//! - **Control assets**: a transaction that issues more of an asset the
//!   relay issued on Ark (a lift, a refund) spends that asset's control VTXO
//!   ([`PlanRequest::control`]) as the relay's first input and re-creates it
//!   to the relay, so that arkd accepts the packet's reissuance. The control
//!   VTXO is never used for carrier sats (it is coloured).
//!
//! Inputs are laid out party by party, then the relay's; outputs likewise.

use std::collections::BTreeMap;

use ark_relay_core::{
    AssetAmount, AssetId, Colour, ErrorCode, PubKey, Sats, Vtxo, VtxoId, VtxoStatus,
};
use ark_relay_protocol::Rejection;
use serde::{Deserialize, Serialize};

/// One payment of a party (or of the relay), asset resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// Recipient.
    pub recipient: PubKey,
    /// What and how much.
    pub colour: Colour,
    /// Whether it is the relay's fee.
    pub fee: bool,
    /// The recipient burns it on arrival (a land: the relay burns the landed
    /// gBTC; its carrier sats join inventory).
    pub burn: bool,
}

impl Payment {
    /// A plain payment.
    pub fn to(recipient: PubKey, colour: Colour) -> Self {
        Self {
            recipient,
            colour,
            fee: false,
            burn: false,
        }
    }
}

/// One party, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyRequest {
    /// The party.
    pub author: PubKey,
    /// Its payments, fee included, in its intent's order.
    pub payments: Vec<Payment>,
    /// Per asset, what its inputs must cover (payments − mint).
    pub draw: BTreeMap<AssetId, u64>,
    /// Per asset, what it burns out of what it receives.
    pub burn: BTreeMap<AssetId, u64>,
    /// Inputs named by its intent.
    pub named: Option<Vec<VtxoId>>,
}

impl PartyRequest {
    /// A party that pays `payments` from its own coloured VTXOs (no mint, no burn).
    pub fn paying(
        author: PubKey,
        payments: Vec<Payment>,
        named: Option<Vec<VtxoId>>,
    ) -> Result<Self, Rejection> {
        let mut draw: BTreeMap<AssetId, u64> = BTreeMap::new();
        for p in &payments {
            let slot = draw.entry(p.colour.asset).or_default();
            *slot = slot
                .checked_add(p.colour.amount.get())
                .ok_or_else(overflow)?;
        }
        Ok(Self {
            author,
            payments,
            draw,
            burn: BTreeMap::new(),
            named,
        })
    }
}

/// An output of the planned transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOutput {
    /// Owner of the new VTXO.
    pub owner: PubKey,
    /// Carrier sats.
    pub sats: Sats,
    /// Colour as the paying intent states it (the colour hint).
    pub hint: Option<Colour>,
    /// Colour the ledger records (the hint minus any burn by the owner).
    pub colour: Option<Colour>,
    /// Which party pays it (`None`: the relay's).
    pub party: Option<usize>,
    /// Whether it is the relay's fee output.
    #[serde(default)]
    pub fee: bool,
}

/// One party's share of the inputs (and, one checkpoint per input, of the checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySpan {
    /// Index of its first input.
    pub first_input: usize,
    /// How many inputs are its.
    pub inputs: usize,
}

impl PartySpan {
    /// The input indexes.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.first_input..self.first_input + self.inputs
    }
}

/// What to plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanRequest<'a> {
    /// The wallet parties.
    pub parties: &'a [PartyRequest],
    /// Outputs the relay pays from its inventory (issued colour: a lift, a refund).
    pub relay_pays: &'a [Payment],
    /// The relay (fee recipient, inventory owner).
    pub relay: PubKey,
    /// The Ark server's dust (every output's minimum carrier).
    pub dust: Sats,
    /// The control VTXO to spend and re-create (a reissuance of a relay asset).
    pub control: Option<&'a Control>,
}

/// The control asset of a relay-issued asset, as the relay holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// The relay-issued asset it controls.
    pub asset: AssetId,
    /// The relay's VTXO holding it (colour: the control asset, 1 unit).
    pub vtxo: Vtxo,
}

/// The planned transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every input: the parties' in order, then the relay's inventory.
    pub inputs: Vec<Vtxo>,
    /// Where each party's inputs are.
    pub spans: Vec<PartySpan>,
    /// How many inputs (at the end of `inputs`) are the relay's.
    pub relay_inputs: usize,
    /// The outputs, in transaction order.
    pub outputs: Vec<PlannedOutput>,
    /// Colour burned by recipients (ledger: destroyed).
    pub burned: Vec<Colour>,
    /// Outputs with a non-default script (set by the engine after planning).
    pub locks: Vec<crate::LockedOutput>,
    /// Inputs spent through a conditional leaf the relay co-signs.
    pub cosign: Vec<crate::CosignedInput>,
    /// The relay-issued asset whose control VTXO this transaction spends
    /// and re-creates (its control asset travels under its own Arkade id).
    pub control: Option<AssetId>,
    /// A genesis: outputs 0 and 1 receive a new asset (1 unit, with this
    /// metadata) and its control asset; their colour is known only once the
    /// transaction is built (the asset id is its txid; set by the builder).
    pub genesis: Option<Vec<(String, String)>>,
}

impl Plan {
    /// The relay's inputs.
    pub fn relay_inputs(&self) -> &[Vtxo] {
        &self.inputs[self.inputs.len() - self.relay_inputs..]
    }
}

fn overflow() -> Rejection {
    Rejection::new(ErrorCode::InvalidAmount, "amount overflows")
}

fn insufficient(msg: String) -> Rejection {
    Rejection::new(ErrorCode::InsufficientBalance, msg)
}

fn colour(asset: AssetId, amount: u64) -> Option<Colour> {
    (amount > 0).then_some(Colour {
        asset,
        amount: AssetAmount::new(amount),
    })
}

/// Selects `author`'s coloured VTXOs covering `need` (per asset, largest
/// first, skipping locked ones), or exactly the `named` ones. Returns the
/// inputs and the colour they hold per asset.
pub fn select_coloured(
    author: &PubKey,
    need: &BTreeMap<AssetId, u64>,
    named: Option<&[VtxoId]>,
    vtxos: &[Vtxo],
) -> Result<(Vec<Vtxo>, BTreeMap<AssetId, u64>), Rejection> {
    let spendable = |v: &&Vtxo| &v.owner == author && v.status.is_spendable();
    let mut inputs: Vec<Vtxo> = Vec::new();
    if let Some(named) = named {
        for id in named {
            let v = vtxos
                .iter()
                .filter(spendable)
                .find(|v| &v.id == id)
                .ok_or_else(|| {
                    Rejection::new(
                        ErrorCode::UnknownVtxoOrAsset,
                        format!("input {id} is not a VTXO of the author"),
                    )
                })?;
            inputs.push(v.clone());
        }
    } else {
        for (asset, wanted) in need {
            let mut candidates: Vec<&Vtxo> = vtxos
                .iter()
                .filter(spendable)
                .filter(|v| v.colour.map(|c| c.asset) == Some(*asset))
                .collect();
            let amount = |v: &&Vtxo| v.colour.map(|c| c.amount.get()).unwrap_or(0);
            let total: u64 = candidates.iter().map(amount).sum();
            let free_total: u64 = candidates
                .iter()
                .filter(|v| v.locked_by.is_none())
                .map(amount)
                .sum();
            if free_total < *wanted {
                return Err(if total >= *wanted {
                    Rejection::new(
                        ErrorCode::InputLocked,
                        format!("enough of asset {asset} is held only by VTXOs locked by another session"),
                    )
                } else {
                    insufficient(format!(
                        "asset {asset}: needs {wanted}, the author holds {total}"
                    ))
                });
            }
            candidates.retain(|v| v.locked_by.is_none());
            candidates.sort_by_key(|v| std::cmp::Reverse(amount(v)));
            let mut got = 0u64;
            for v in candidates {
                if got >= *wanted {
                    break;
                }
                got = got.saturating_add(amount(&v));
                inputs.push(v.clone());
            }
        }
    }
    let mut have: BTreeMap<AssetId, u64> = BTreeMap::new();
    for c in inputs.iter().filter_map(|v| v.colour) {
        let slot = have.entry(c.asset).or_default();
        *slot = slot.checked_add(c.amount.get()).ok_or_else(overflow)?;
    }
    for (asset, wanted) in need {
        let held = have.get(asset).copied().unwrap_or(0);
        if held < *wanted {
            return Err(insufficient(format!(
                "asset {asset}: needs {wanted}, the inputs hold {held}"
            )));
        }
    }
    Ok((inputs, have))
}

/// Plans `req` from the parties' VTXOs (`vtxos[i]` for party `i`) and the
/// relay's free `inventory`.
pub fn plan(
    req: &PlanRequest<'_>,
    vtxos: &[Vec<Vtxo>],
    inventory: &[Vtxo],
) -> Result<Plan, Rejection> {
    let PlanRequest {
        parties,
        relay_pays,
        relay,
        dust,
        control,
    } = *req;
    let mut inputs: Vec<Vtxo> = Vec::new();
    let mut spans = Vec::with_capacity(parties.len());
    let mut outputs: Vec<PlannedOutput> = Vec::new();
    let mut burned: Vec<Colour> = Vec::new();
    let mut shortfall = Sats::ZERO;
    let output = |pay: &Payment, party: Option<usize>| PlannedOutput {
        owner: pay.recipient,
        sats: dust,
        hint: Some(pay.colour),
        colour: (!pay.burn).then_some(pay.colour),
        party,
        fee: pay.fee,
    };
    for (i, p) in parties.iter().enumerate() {
        let theirs = vtxos.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let (mine, have) = select_coloured(&p.author, &p.draw, p.named.as_deref(), theirs)
            .map_err(|r| {
                if parties.len() > 1 {
                    Rejection::new(r.code, format!("party {i}: {}", r.message))
                } else {
                    r
                }
            })?;
        let first_output = outputs.len();
        for pay in &p.payments {
            outputs.push(output(pay, Some(i)));
            if pay.burn {
                burned.push(pay.colour);
            }
        }
        for (asset, held) in &have {
            let change = held
                .checked_sub(p.draw.get(asset).copied().unwrap_or(0))
                .ok_or_else(overflow)?;
            if change > 0 {
                outputs.push(PlannedOutput {
                    owner: p.author,
                    sats: dust,
                    hint: colour(*asset, change),
                    colour: colour(*asset, change),
                    party: Some(i),
                    fee: false,
                });
            }
        }
        let in_sats = Sats::checked_sum(mine.iter().map(|v| v.sats)).ok_or_else(overflow)?;
        let out_sats = Sats::checked_sum(outputs[first_output..].iter().map(|o| o.sats))
            .ok_or_else(overflow)?;
        match in_sats.checked_sub(out_sats) {
            Some(extra) if extra > Sats::ZERO => {
                // The party's surplus sats stay with it (or its first payee).
                let own = outputs[first_output..]
                    .iter()
                    .position(|o| o.owner == p.author)
                    .map(|k| k + first_output);
                match own {
                    Some(k) => {
                        outputs[k].sats = outputs[k].sats.checked_add(extra).ok_or_else(overflow)?
                    }
                    None if extra >= dust => outputs.push(PlannedOutput {
                        owner: p.author,
                        sats: extra,
                        hint: None,
                        colour: None,
                        party: Some(i),
                        fee: false,
                    }),
                    None => {
                        let first = outputs.get_mut(first_output).ok_or_else(|| {
                            Rejection::new(ErrorCode::InvalidAmount, "an intent pays nothing")
                        })?;
                        first.sats = first.sats.checked_add(extra).ok_or_else(overflow)?;
                    }
                }
            }
            Some(_) => {}
            None => {
                let short = out_sats.checked_sub(in_sats).ok_or_else(overflow)?;
                shortfall = shortfall.checked_add(short).ok_or_else(overflow)?;
            }
        }
        spans.push(PartySpan {
            first_input: inputs.len(),
            inputs: mine.len(),
        });
        inputs.extend(mine);
    }
    for pay in relay_pays {
        outputs.push(output(pay, None));
        shortfall = shortfall.checked_add(dust).ok_or_else(overflow)?;
    }
    // The control VTXO goes back to the relay unchanged (its sats pay its
    // own output).
    if let Some(c) = control {
        let held = c.vtxo.colour.filter(|_| c.vtxo.owner == relay);
        if held.is_none() || c.vtxo.locked_by.is_some() || !c.vtxo.status.is_spendable() {
            return Err(Rejection::new(
                ErrorCode::BackendUnavailable,
                format!("the control VTXO of asset {} is not available", c.asset),
            ));
        }
        outputs.push(PlannedOutput {
            owner: relay,
            sats: c.vtxo.sats,
            hint: held,
            colour: held,
            party: None,
            fee: false,
        });
    }

    // Burns: the burner's received colour shrinks (largest outputs first).
    for p in parties {
        for (asset, amount) in &p.burn {
            let mut left = *amount;
            for o in outputs
                .iter_mut()
                .filter(|o| o.owner == p.author && o.colour.map(|c| c.asset) == Some(*asset))
            {
                let have = o.colour.map(|c| c.amount.get()).unwrap_or(0);
                let take = have.min(left);
                o.colour = colour(*asset, have - take);
                left -= take;
                if left == 0 {
                    break;
                }
            }
            if left > 0 {
                return Err(Rejection::new(
                    ErrorCode::BatchInconsistent,
                    format!(
                        "{} burns {amount} of {asset} but does not receive it",
                        p.author
                    ),
                ));
            }
            burned.extend(colour(*asset, *amount));
        }
    }

    // Carrier sats from the relay's inventory, plus the recovery input.
    let mut pool: Vec<&Vtxo> = inventory
        .iter()
        .filter(|v| v.owner == relay && v.status == VtxoStatus::Available)
        .filter(|v| v.colour.is_none() && v.locked_by.is_none() && v.sats >= dust)
        .collect();
    pool.sort_by_key(|v| v.sats);
    let mut got = Sats::ZERO;
    let mut chosen = Vec::new();
    for v in &pool {
        if got >= shortfall && !chosen.is_empty() {
            break;
        }
        got = got.checked_add(v.sats).ok_or_else(overflow)?;
        chosen.push((*v).clone());
    }
    if got < shortfall {
        return Err(Rejection::new(
            ErrorCode::BackendUnavailable,
            "the relay's VTXO inventory cannot cover carrier sats right now",
        ));
    }
    let rest = got.checked_sub(shortfall).ok_or_else(overflow)?;
    if rest >= dust {
        outputs.push(PlannedOutput {
            owner: relay,
            sats: rest,
            hint: None,
            colour: None,
            party: None,
            fee: false,
        });
    } else if rest > Sats::ZERO {
        // Too small for an output of its own: left in the first fee output,
        // or with the first output.
        let k = outputs.iter().position(|o| o.fee).unwrap_or(0);
        let target = outputs
            .get_mut(k)
            .ok_or_else(|| Rejection::new(ErrorCode::InvalidAmount, "nothing to pay"))?;
        target.sats = target.sats.checked_add(rest).ok_or_else(overflow)?;
    }
    if outputs.is_empty() {
        return Err(Rejection::new(ErrorCode::InvalidAmount, "nothing to pay"));
    }
    let relay_inputs = chosen.len() + usize::from(control.is_some());
    inputs.extend(control.map(|c| c.vtxo.clone()));
    inputs.extend(chosen);
    Ok(Plan {
        inputs,
        spans,
        relay_inputs,
        outputs,
        burned,
        locks: Vec::new(),
        cosign: Vec::new(),
        control: control.map(|c| c.asset),
        genesis: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ark_relay_core::{Tapscripts, UnixTime};
    use bitcoin::hashes::Hash;

    use super::*;

    fn key(n: u8) -> PubKey {
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&[n; 32]).unwrap();
        PubKey::from_x_only(sk.x_only_public_key(&secp).0)
    }

    fn vtxo(n: u8, owner: PubKey, sats: u64, colour: Option<(u8, u64)>) -> Vtxo {
        Vtxo {
            id: VtxoId::new(bitcoin::Txid::from_byte_array([n; 32]), 0),
            owner,
            sats: Sats::new(sats),
            colour: colour.map(|(a, amount)| c(a, amount)),
            status: VtxoStatus::Assigned,
            tapscripts: Tapscripts::default(),
            locked_by: None,
            spent_by: None,
            created_at: UnixTime(0),
            spent_at: None,
            expires_at: None,
        }
    }

    fn inv(n: u8, relay: PubKey, sats: u64) -> Vtxo {
        Vtxo {
            status: VtxoStatus::Available,
            ..vtxo(n, relay, sats, None)
        }
    }

    fn c(a: u8, amount: u64) -> Colour {
        Colour {
            asset: AssetId::from_bytes([a; 32]),
            amount: AssetAmount::new(amount),
        }
    }

    fn fee(relay: PubKey, col: Colour) -> Payment {
        Payment {
            fee: true,
            ..Payment::to(relay, col)
        }
    }

    const DUST: Sats = Sats::new(330);

    fn sums(p: &Plan) -> (u64, u64) {
        (
            p.inputs.iter().map(|v| v.sats.get()).sum(),
            p.outputs.iter().map(|o| o.sats.get()).sum(),
        )
    }

    fn transfer(
        pays: Vec<Payment>,
        vtxos: Vec<Vtxo>,
        inventory: &[Vtxo],
        named: Option<Vec<VtxoId>>,
    ) -> Result<Plan, Rejection> {
        let party = PartyRequest::paying(key(1), pays, named)?;
        let req = PlanRequest {
            parties: std::slice::from_ref(&party),
            relay_pays: &[],
            relay: key(3),
            dust: DUST,
            control: None,
        };
        plan(&req, &[vtxos], inventory)
    }

    #[test]
    fn transfer_with_change_and_inventory() {
        let (alice, bob, relay) = (key(1), key(2), key(3));
        let p = transfer(
            vec![Payment::to(bob, c(7, 1_000)), fee(relay, c(7, 10))],
            vec![vtxo(1, alice, 330, Some((7, 2_000)))],
            &[inv(9, relay, 5_000)],
            None,
        )
        .unwrap();
        assert_eq!(p.spans[0].inputs, 1);
        assert_eq!(
            p.relay_inputs, 1,
            "three outputs need 990 sats, the author has 330"
        );
        let colours: Vec<_> = p.outputs.iter().map(|o| (o.owner, o.colour)).collect();
        assert!(colours.contains(&(bob, Some(c(7, 1_000)))));
        assert!(colours.contains(&(relay, Some(c(7, 10)))));
        assert!(colours.contains(&(alice, Some(c(7, 990)))));
        let (ins, outs) = sums(&p);
        assert_eq!(ins, outs, "sats conserved");
        assert!(p.outputs.iter().all(|o| o.sats >= DUST));
    }

    #[test]
    fn surplus_sats_stay_with_the_author() {
        let (alice, bob, relay) = (key(1), key(2), key(3));
        let p = transfer(
            vec![Payment::to(bob, c(7, 1_000)), fee(relay, c(7, 10))],
            vec![vtxo(1, alice, 5_000, Some((7, 1_010)))],
            &[],
            None,
        )
        .unwrap();
        assert_eq!(p.relay_inputs, 0, "no inventory needed, none available");
        let alice_out: Vec<_> = p.outputs.iter().filter(|o| o.owner == alice).collect();
        assert_eq!(alice_out.len(), 1);
        assert_eq!(alice_out[0].colour, None);
        assert_eq!(alice_out[0].sats, Sats::new(5_000 - 660));
    }

    #[test]
    fn a_recovery_input_is_added_and_returned() {
        let (alice, bob, relay) = (key(1), key(2), key(3));
        let p = transfer(
            vec![Payment::to(bob, c(7, 1_000)), fee(relay, c(7, 10))],
            vec![vtxo(1, alice, 5_000, Some((7, 1_010)))],
            &[inv(9, relay, 2_000), inv(8, relay, 1_000)],
            None,
        )
        .unwrap();
        assert_eq!(p.relay_inputs(), &[inv(8, relay, 1_000)], "the smallest");
        assert!(p
            .outputs
            .iter()
            .any(|o| o.owner == relay && o.colour.is_none() && o.sats == Sats::new(1_000)));
        let (ins, outs) = sums(&p);
        assert_eq!(ins, outs);
    }

    #[test]
    fn refusals() {
        let (alice, bob) = (key(1), key(2));
        let pay = || vec![Payment::to(bob, c(7, 1_000))];
        let code = |r: Result<Plan, Rejection>| r.map_err(|e| e.code).err();
        assert_eq!(
            code(transfer(
                pay(),
                vec![vtxo(1, alice, 330, Some((7, 500)))],
                &[],
                None
            )),
            Some(ErrorCode::InsufficientBalance)
        );
        let mut locked = vtxo(1, alice, 330, Some((7, 5_000)));
        locked.locked_by = Some(ark_relay_core::SessionId::from_bytes([1; 32]));
        assert_eq!(
            code(transfer(pay(), vec![locked], &[], None)),
            Some(ErrorCode::InputLocked)
        );
        let rich = || vec![vtxo(1, alice, 330, Some((7, 5_000)))];
        assert_eq!(
            code(transfer(pay(), rich(), &[], None)),
            Some(ErrorCode::BackendUnavailable),
            "no inventory for carrier sats"
        );
        let other = vec![VtxoId::new(bitcoin::Txid::from_byte_array([5; 32]), 0)];
        assert_eq!(
            code(transfer(pay(), rich(), &[], Some(other))),
            Some(ErrorCode::UnknownVtxoOrAsset)
        );
    }

    #[test]
    fn a_swap_conserves_colour_and_sats() {
        let (alice, dex, relay) = (key(1), key(2), key(3));
        let (gbtc, gusd) = (7u8, 8u8);
        let parties = vec![
            PartyRequest::paying(
                alice,
                vec![Payment::to(dex, c(gbtc, 1_000)), fee(relay, c(gbtc, 10))],
                None,
            )
            .unwrap(),
            PartyRequest::paying(
                dex,
                vec![Payment::to(alice, c(gusd, 650)), fee(relay, c(gbtc, 10))],
                None,
            )
            .unwrap(),
        ];
        let vtxos = vec![
            vec![vtxo(1, alice, 330, Some((gbtc, 5_000)))],
            vec![
                vtxo(2, dex, 330, Some((gusd, 10_000))),
                vtxo(3, dex, 330, Some((gbtc, 100))),
            ],
        ];
        let req = PlanRequest {
            parties: &parties,
            relay_pays: &[],
            relay,
            dust: DUST,
            control: None,
        };
        let p = plan(&req, &vtxos, &[inv(9, relay, 5_000), inv(8, relay, 1_000)]).unwrap();
        assert_eq!(
            p.spans[0],
            PartySpan {
                first_input: 0,
                inputs: 1
            }
        );
        assert_eq!(
            p.spans[1],
            PartySpan {
                first_input: 1,
                inputs: 2
            }
        );
        assert!(p.relay_inputs >= 1, "always a recovery input");
        let (ins, outs) = sums(&p);
        assert_eq!(ins, outs, "sats conserved");
        let total = |it: &mut dyn Iterator<Item = Colour>| {
            let mut m: BTreeMap<AssetId, u64> = BTreeMap::new();
            for col in it {
                *m.entry(col.asset).or_default() += col.amount.get();
            }
            m
        };
        assert_eq!(
            total(&mut p.inputs.iter().filter_map(|v| v.colour)),
            total(&mut p.outputs.iter().filter_map(|o| o.colour)),
            "colour conserved"
        );
        assert!(p.outputs.iter().all(|o| o.sats >= DUST));
    }

    #[test]
    fn a_mint_needs_no_input_and_a_burn_strips_colour() {
        let (alice, dex, relay) = (key(1), key(2), key(3));
        let (lp, gbtc) = (5u8, 7u8);
        // Alice pays 100 LP to the DEX, which burns them; the DEX mints 40 LP to Alice.
        let mut dex_party = PartyRequest::paying(
            dex,
            vec![Payment::to(alice, c(lp, 40)), fee(relay, c(gbtc, 10))],
            None,
        )
        .unwrap();
        dex_party.draw.remove(&AssetId::from_bytes([lp; 32]));
        dex_party.burn = [(AssetId::from_bytes([lp; 32]), 100)].into();
        let parties = vec![
            PartyRequest::paying(
                alice,
                vec![Payment::to(dex, c(lp, 100)), fee(relay, c(gbtc, 10))],
                None,
            )
            .unwrap(),
            dex_party,
        ];
        let vtxos = vec![
            vec![
                vtxo(1, alice, 330, Some((lp, 100))),
                vtxo(4, alice, 330, Some((gbtc, 10))),
            ],
            vec![vtxo(3, dex, 330, Some((gbtc, 10)))],
        ];
        let req = PlanRequest {
            parties: &parties,
            relay_pays: &[],
            relay,
            dust: DUST,
            control: None,
        };
        let p = plan(&req, &vtxos, &[inv(9, relay, 5_000)]).unwrap();
        let to_dex: Vec<_> = p.outputs.iter().filter(|o| o.owner == dex).collect();
        assert_eq!(to_dex.len(), 1);
        assert_eq!(to_dex[0].hint, Some(c(lp, 100)), "Alice sees her payment");
        assert_eq!(to_dex[0].colour, None, "the ledger burns it");
        assert_eq!(p.burned, vec![c(lp, 100)]);
        assert_eq!(p.spans[1].inputs, 1, "the mint needs no LP input");
    }

    #[test]
    fn the_relay_alone_issues_from_inventory() {
        let (bob, relay) = (key(2), key(3));
        let pays = [Payment::to(bob, c(7, 500))];
        let req = PlanRequest {
            parties: &[],
            relay_pays: &pays,
            relay,
            dust: DUST,
            control: None,
        };
        let p = plan(&req, &[], &[inv(9, relay, 5_000)]).unwrap();
        assert_eq!(p.relay_inputs, 1);
        assert_eq!(p.outputs[0].owner, bob, "the issued VTXO is output 0");
        assert_eq!(p.outputs[0].colour, Some(c(7, 500)));
        assert_eq!(p.outputs[1].sats, Sats::new(5_000 - 330));
        let small = plan(&req, &[], &[inv(9, relay, 500)]).unwrap();
        assert_eq!(
            small.outputs.len(),
            1,
            "a remainder below dust stays with the user"
        );
        assert_eq!(small.outputs[0].sats, Sats::new(500));
        assert_eq!(
            plan(&req, &[], &[]).map_err(|r| r.code).err(),
            Some(ErrorCode::BackendUnavailable)
        );
    }

    #[test]
    fn a_reissuance_spends_and_recreates_the_control_vtxo() {
        let (bob, relay) = (key(2), key(3));
        let pays = [Payment::to(bob, c(7, 500))];
        let control = Control {
            asset: AssetId::from_bytes([7; 32]),
            vtxo: vtxo(5, relay, 330, Some((8, 1))),
        };
        let req = PlanRequest {
            parties: &[],
            relay_pays: &pays,
            relay,
            dust: DUST,
            control: Some(&control),
        };
        let p = plan(&req, &[], &[inv(9, relay, 5_000)]).unwrap();
        assert_eq!(p.relay_inputs, 2, "the control VTXO and one carrier");
        assert_eq!(p.inputs[0], control.vtxo, "the control VTXO first");
        assert_eq!(p.control, Some(control.asset));
        assert_eq!(p.outputs[0].colour, Some(c(7, 500)));
        assert_eq!(
            (p.outputs[1].owner, p.outputs[1].sats, p.outputs[1].colour),
            (relay, Sats::new(330), Some(c(8, 1))),
            "re-created to the relay, unchanged"
        );
        let (ins, outs) = sums(&p);
        assert_eq!(ins, outs);
        // A control VTXO in inventory is never carrier.
        let coloured_inventory = [vtxo(5, relay, 9_000, Some((8, 1)))];
        let bare = PlanRequest {
            control: None,
            ..req
        };
        assert_eq!(
            plan(&bare, &[], &coloured_inventory)
                .map_err(|r| r.code)
                .err(),
            Some(ErrorCode::BackendUnavailable)
        );
        // A locked control VTXO cannot be used.
        let mut locked = control.clone();
        locked.vtxo.locked_by = Some(ark_relay_core::SessionId::from_bytes([1; 32]));
        let req = PlanRequest {
            control: Some(&locked),
            ..req
        };
        assert!(plan(&req, &[], &[inv(9, relay, 5_000)]).is_err());
    }

    #[test]
    fn a_land_burns_what_the_relay_receives() {
        let (alice, relay) = (key(1), key(3));
        let landed = Payment {
            burn: true,
            ..Payment::to(relay, c(7, 1_000))
        };
        let p = transfer(
            vec![landed, fee(relay, c(7, 1))],
            vec![vtxo(1, alice, 330, Some((7, 1_001)))],
            &[inv(9, relay, 5_000)],
            None,
        )
        .unwrap();
        assert_eq!(p.outputs[0].hint, Some(c(7, 1_000)));
        assert_eq!(p.outputs[0].colour, None);
        assert_eq!(p.burned, vec![c(7, 1_000)]);
    }
}
