//! Coin selection and output layout for one party's transfer (pure).
//!
//! Colour: the author's VTXOs carrying each asset it sends are selected
//! (largest first) to cover its payments plus the gBTC fee; change goes back to
//! the author. Carrier sats: every output carries at least the Ark server's
//! dust. The author's input sats go only to outputs owned by the author, its
//! recipients or the fee output; when they do not cover every output's dust,
//! the relay adds uncoloured inventory VTXOs of its own and keeps their
//! remainder in an uncoloured change output (DESIGN.md §6 "Colour").

use std::collections::BTreeMap;

use ark_relay_core::{AssetId, Colour, ErrorCode, PubKey, Sats, Vtxo, VtxoId, VtxoStatus};
use ark_relay_protocol::Rejection;
use serde::{Deserialize, Serialize};

/// One payment of the intent, with its asset resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// Who receives.
    pub recipient: PubKey,
    /// What and how much.
    pub colour: Colour,
}

/// An output of the planned transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOutput {
    /// Owner of the new VTXO.
    pub owner: PubKey,
    /// Carrier sats.
    pub sats: Sats,
    /// Colour, if any.
    pub colour: Option<Colour>,
    /// Whether it is the relay's fee output.
    #[serde(default)]
    pub fee: bool,
}

/// The planned transaction of one party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The author's inputs.
    pub inputs: Vec<Vtxo>,
    /// The relay's inventory inputs (carrier sats).
    pub inventory: Vec<Vtxo>,
    /// The outputs, in transaction order.
    pub outputs: Vec<PlannedOutput>,
}

impl Plan {
    /// Every input, author's first.
    pub fn all_inputs(&self) -> impl Iterator<Item = &Vtxo> {
        self.inputs.iter().chain(&self.inventory)
    }
}

fn insufficient(msg: String) -> Rejection {
    Rejection::new(ErrorCode::InsufficientBalance, msg)
}

fn overflow() -> Rejection {
    Rejection::new(ErrorCode::InvalidAmount, "amount overflows")
}

/// Selects `author`'s coloured VTXOs covering `need` (per asset, largest
/// first, skipping locked ones), or exactly the `named` ones. Returns the
/// inputs and the colour they hold per asset (shared with batch planning).
pub fn select_coloured(
    author: &PubKey,
    need: &BTreeMap<AssetId, u64>,
    named: Option<&[VtxoId]>,
    vtxos: &[Vtxo],
) -> Result<(Vec<Vtxo>, BTreeMap<AssetId, u64>), Rejection> {
    let spendable = |v: &&Vtxo| &v.owner == author && v.status.is_spendable();
    let mut inputs: Vec<Vtxo> = Vec::new();
    let mut have: BTreeMap<AssetId, u64> = BTreeMap::new();
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
            let free_total: u64 = candidates
                .iter()
                .filter(|v| v.locked_by.is_none())
                .filter_map(|v| v.colour.map(|c| c.amount.get()))
                .sum();
            let total: u64 = candidates
                .iter()
                .filter_map(|v| v.colour.map(|c| c.amount.get()))
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
            candidates
                .sort_by_key(|v| std::cmp::Reverse(v.colour.map(|c| c.amount.get()).unwrap_or(0)));
            let mut got = 0u64;
            for v in candidates {
                if got >= *wanted {
                    break;
                }
                got = got.saturating_add(v.colour.map(|c| c.amount.get()).unwrap_or(0));
                inputs.push(v.clone());
            }
        }
    }
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

/// What one party wants to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The party.
    pub author: &'a PubKey,
    /// The relay (fee recipient, inventory owner).
    pub relay: &'a PubKey,
    /// The payments.
    pub payments: &'a [Payment],
    /// The fee, if any.
    pub fee: Option<Colour>,
    /// Inputs named by the intent, if any.
    pub named: Option<&'a [VtxoId]>,
    /// The Ark server's dust limit (every output's minimum carrier).
    pub dust: Sats,
    /// Always co-spend one relay inventory VTXO (returned as change), so the
    /// relay can prove ownership of an input to arkd's `GetPendingTx` and
    /// recover the transaction alone if a `SubmitTx` answer is lost.
    pub recovery_input: bool,
}

/// Plans `req` from the author's `vtxos`, adding relay `inventory` for carrier
/// sats when needed. `req.named` restricts the author's inputs to exactly those.
pub fn plan_transfer(
    req: &Request<'_>,
    vtxos: &[Vtxo],
    inventory: &[Vtxo],
) -> Result<Plan, Rejection> {
    let Request {
        author,
        relay,
        payments,
        fee,
        named,
        dust,
        recovery_input,
    } = *req;
    // What must be covered, per asset.
    let mut need: BTreeMap<AssetId, u64> = BTreeMap::new();
    for c in payments.iter().map(|p| p.colour).chain(fee) {
        let slot = need.entry(c.asset).or_default();
        *slot = slot.checked_add(c.amount.get()).ok_or_else(overflow)?;
    }

    let (inputs, have) = select_coloured(author, &need, named, vtxos)?;

    // Outputs: payments, the fee, then change per asset.
    let mut outputs: Vec<PlannedOutput> = payments
        .iter()
        .map(|p| PlannedOutput {
            owner: p.recipient,
            sats: dust,
            colour: Some(p.colour),
            fee: false,
        })
        .collect();
    if let Some(f) = fee {
        outputs.push(PlannedOutput {
            owner: *relay,
            sats: dust,
            colour: Some(f),
            fee: true,
        });
    }
    for (asset, held) in &have {
        let change = held - need.get(asset).copied().unwrap_or(0);
        if change > 0 {
            let colour = Colour {
                asset: *asset,
                amount: ark_relay_core::AssetAmount::new(change),
            };
            outputs.push(PlannedOutput {
                owner: *author,
                sats: dust,
                colour: Some(colour),
                fee: false,
            });
        }
    }

    // Carrier sats.
    let user_sats = Sats::checked_sum(inputs.iter().map(|v| v.sats)).ok_or_else(overflow)?;
    let required = Sats::checked_sum(outputs.iter().map(|o| o.sats)).ok_or_else(overflow)?;
    let mut chosen_inventory = Vec::new();
    if let Some(extra) = user_sats.checked_sub(required) {
        if extra > Sats::ZERO {
            // The author's surplus stays with the author (or its recipient).
            match outputs.iter_mut().find(|o| &o.owner == author) {
                Some(change) => {
                    change.sats = change.sats.checked_add(extra).ok_or_else(overflow)?
                }
                None if extra >= dust => outputs.push(PlannedOutput {
                    owner: *author,
                    sats: extra,
                    colour: None,
                    fee: false,
                }),
                None => {
                    outputs[0].sats = outputs[0].sats.checked_add(extra).ok_or_else(overflow)?
                }
            }
        }
    } else {
        let shortfall = required.checked_sub(user_sats).ok_or_else(overflow)?;
        let mut pool: Vec<&Vtxo> = inventory
            .iter()
            .filter(|v| &v.owner == relay && v.status == VtxoStatus::Available)
            .filter(|v| v.colour.is_none() && v.locked_by.is_none())
            .collect();
        pool.sort_by_key(|v| v.sats);
        let mut got = Sats::ZERO;
        for v in pool {
            if got >= shortfall {
                break;
            }
            got = got.checked_add(v.sats).ok_or_else(overflow)?;
            chosen_inventory.push(v.clone());
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
                owner: *relay,
                sats: rest,
                colour: None,
                fee: false,
            });
        } else if rest > Sats::ZERO {
            // Too small for an output of its own: the relay leaves it in its fee output,
            // or, without one, with the first recipient.
            let target = outputs.iter().position(|o| o.fee).unwrap_or(0);
            outputs[target].sats = outputs[target]
                .sats
                .checked_add(rest)
                .ok_or_else(overflow)?;
        }
    }
    if recovery_input && chosen_inventory.is_empty() {
        let smallest = inventory
            .iter()
            .filter(|v| &v.owner == relay && v.status == VtxoStatus::Available)
            .filter(|v| v.colour.is_none() && v.locked_by.is_none() && v.sats >= dust)
            .min_by_key(|v| v.sats);
        if let Some(v) = smallest {
            chosen_inventory.push(v.clone());
            outputs.push(PlannedOutput {
                owner: *relay,
                sats: v.sats,
                colour: None,
                fee: false,
            });
        }
    }
    Ok(Plan {
        inputs,
        inventory: chosen_inventory,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use ark_relay_core::{AssetAmount, Tapscripts, UnixTime};
    use bitcoin::hashes::Hash;

    use super::*;

    fn key(n: u8) -> PubKey {
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&[n; 32]).expect("key");
        PubKey::from_x_only(sk.x_only_public_key(&secp).0)
    }

    fn vtxo(
        n: u8,
        owner: PubKey,
        sats: u64,
        colour: Option<(u8, u64)>,
        status: VtxoStatus,
    ) -> Vtxo {
        Vtxo {
            id: VtxoId::new(bitcoin::Txid::from_byte_array([n; 32]), 0),
            owner,
            sats: Sats::new(sats),
            colour: colour.map(|(a, amount)| Colour {
                asset: AssetId::from_bytes([a; 32]),
                amount: AssetAmount::new(amount),
            }),
            status,
            tapscripts: Tapscripts::default(),
            locked_by: None,
            spent_by: None,
            created_at: UnixTime(0),
            spent_at: None,
            expires_at: None,
        }
    }

    fn c(a: u8, amount: u64) -> Colour {
        Colour {
            asset: AssetId::from_bytes([a; 32]),
            amount: AssetAmount::new(amount),
        }
    }

    fn sum_sats<'a>(it: impl Iterator<Item = &'a Sats>) -> u64 {
        it.map(|s| s.get()).sum()
    }

    fn plan(
        pay: &[Payment],
        vtxos: &[Vtxo],
        inventory: &[Vtxo],
        named: Option<&[VtxoId]>,
    ) -> Result<Plan, Rejection> {
        let (alice, relay) = (key(1), key(3));
        let req = Request {
            author: &alice,
            relay: &relay,
            payments: pay,
            fee: Some(c(7, 10)),
            named,
            dust: Sats::new(330),
            recovery_input: false,
        };
        plan_transfer(&req, vtxos, inventory)
    }

    #[test]
    fn transfer_with_change_and_inventory() {
        let (alice, bob, relay) = (key(1), key(2), key(3));
        let vtxos = [vtxo(1, alice, 330, Some((7, 2_000)), VtxoStatus::Assigned)];
        let inv = [vtxo(9, relay, 5_000, None, VtxoStatus::Available)];
        let pay = [Payment {
            recipient: bob,
            colour: c(7, 1_000),
        }];
        let p = plan(&pay, &vtxos, &inv, None).expect("plan");
        assert_eq!(p.inputs.len(), 1);
        assert_eq!(
            p.inventory.len(),
            1,
            "three outputs need 990 sats, the author has 330"
        );
        let colours: Vec<_> = p.outputs.iter().map(|o| (o.owner, o.colour)).collect();
        assert!(colours.contains(&(bob, Some(c(7, 1_000)))));
        assert!(colours.contains(&(relay, Some(c(7, 10)))));
        assert!(colours.contains(&(alice, Some(c(7, 990)))));
        let ins = sum_sats(p.all_inputs().map(|v| &v.sats));
        let outs = sum_sats(p.outputs.iter().map(|o| &o.sats));
        assert_eq!(ins, outs, "sats conserved");
        assert!(p.outputs.iter().all(|o| o.sats >= Sats::new(330)));
    }

    #[test]
    fn surplus_sats_stay_with_the_author() {
        let (alice, bob) = (key(1), key(2));
        let vtxos = [vtxo(
            1,
            alice,
            5_000,
            Some((7, 1_010)),
            VtxoStatus::Assigned,
        )];
        let pay = [Payment {
            recipient: bob,
            colour: c(7, 1_000),
        }];
        let p = plan(&pay, &vtxos, &[], None).expect("plan");
        assert!(p.inventory.is_empty());
        let alice_out: Vec<_> = p.outputs.iter().filter(|o| o.owner == alice).collect();
        assert_eq!(alice_out.len(), 1);
        assert_eq!(alice_out[0].colour, None);
        assert_eq!(alice_out[0].sats, Sats::new(5_000 - 660));
    }

    #[test]
    fn a_recovery_input_is_added_and_returned() {
        let (alice, bob, relay) = (key(1), key(2), key(3));
        let vtxos = [vtxo(
            1,
            alice,
            5_000,
            Some((7, 1_010)),
            VtxoStatus::Assigned,
        )];
        let inv = [
            vtxo(9, relay, 2_000, None, VtxoStatus::Available),
            vtxo(8, relay, 1_000, None, VtxoStatus::Available),
        ];
        let pay = [Payment {
            recipient: bob,
            colour: c(7, 1_000),
        }];
        let req = Request {
            author: &alice,
            relay: &relay,
            payments: &pay,
            fee: Some(c(7, 10)),
            named: None,
            dust: Sats::new(330),
            recovery_input: true,
        };
        let p = plan_transfer(&req, &vtxos, &inv).expect("plan");
        assert_eq!(p.inventory.len(), 1);
        assert_eq!(p.inventory[0].sats, Sats::new(1_000), "the smallest");
        assert!(p
            .outputs
            .iter()
            .any(|o| o.owner == relay && o.colour.is_none() && o.sats == Sats::new(1_000)));
        let ins = sum_sats(p.all_inputs().map(|v| &v.sats));
        assert_eq!(ins, sum_sats(p.outputs.iter().map(|o| &o.sats)));
    }

    #[test]
    fn refusals() {
        let (alice, bob) = (key(1), key(2));
        let pay = [Payment {
            recipient: bob,
            colour: c(7, 1_000),
        }];
        let poor = [vtxo(1, alice, 330, Some((7, 500)), VtxoStatus::Assigned)];
        assert_eq!(
            plan(&pay, &poor, &[], None).map_err(|e| e.code).err(),
            Some(ErrorCode::InsufficientBalance)
        );
        let mut locked = vtxo(1, alice, 330, Some((7, 5_000)), VtxoStatus::Assigned);
        locked.locked_by = Some(ark_relay_core::SessionId::from_bytes([1; 32]));
        assert_eq!(
            plan(&pay, &[locked], &[], None).map_err(|e| e.code).err(),
            Some(ErrorCode::InputLocked)
        );
        let rich = [vtxo(1, alice, 330, Some((7, 5_000)), VtxoStatus::Assigned)];
        assert_eq!(
            plan(&pay, &rich, &[], None).map_err(|e| e.code).err(),
            Some(ErrorCode::BackendUnavailable),
            "no inventory for carrier sats"
        );
        let other = [VtxoId::new(bitcoin::Txid::from_byte_array([5; 32]), 0)];
        assert_eq!(
            plan(&pay, &rich, &[], Some(&other))
                .map_err(|e| e.code)
                .err(),
            Some(ErrorCode::UnknownVtxoOrAsset)
        );
    }
}
