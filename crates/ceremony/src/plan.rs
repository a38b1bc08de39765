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
#[path = "plan_tests.rs"]
mod tests;
