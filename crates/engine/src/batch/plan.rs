//! Coin selection and output layout of one atomic batch (pure).
//!
//! Each party is planned like a transfer author ([`select_coloured`]): its
//! coloured VTXOs cover what it pays (payments + fee − what it mints), change
//! per asset returns to it, and its surplus carrier sats stay with it. The
//! parties' shortfall of carrier sats is covered once, for the whole batch,
//! from the relay's uncoloured inventory (plus one recovery input so the relay
//! can find the transaction at arkd alone after a crash), with the remainder
//! back to the relay. Burns strip colour from what the issuer receives.
//! Inputs are laid out party by party, then the relay's; outputs likewise.

use std::collections::BTreeMap;

use ark_relay_core::{
    AssetAmount, AssetId, Colour, ErrorCode, PubKey, Sats, Vtxo, VtxoId, VtxoStatus,
};
use ark_relay_protocol::Rejection;
use serde::{Deserialize, Serialize};

use crate::transfer::select_coloured;

/// One payment of a party, asset resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyPayment {
    /// Recipient.
    pub recipient: PubKey,
    /// What and how much.
    pub colour: Colour,
    /// Whether it is the relay's fee.
    pub fee: bool,
}

/// One party of the batch, as the planner needs it.
#[derive(Debug, Clone)]
pub struct PartyRequest {
    /// The party.
    pub author: PubKey,
    /// Its payments, fee included.
    pub payments: Vec<PartyPayment>,
    /// Per asset, what its inputs must cover (payments − mint).
    pub draw: BTreeMap<AssetId, u64>,
    /// Per asset, what it burns out of what it receives.
    pub burn: BTreeMap<AssetId, u64>,
    /// Inputs named by its intent.
    pub named: Option<Vec<VtxoId>>,
}

/// An output of the batch transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutput {
    /// Owner of the new VTXO.
    pub owner: PubKey,
    /// Carrier sats.
    pub sats: Sats,
    /// Colour as the paying party's intent states it (the colour hint).
    pub hint: Option<Colour>,
    /// Colour the ledger records (the hint minus any burn by the owner).
    pub colour: Option<Colour>,
    /// Which party pays it (`None`: the relay's carrier change).
    pub party: Option<usize>,
}

/// One party's share of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySpan {
    /// Index of its first input (and checkpoint).
    pub first_input: usize,
    /// How many inputs (and checkpoints) are its.
    pub inputs: usize,
}

/// The planned batch transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Every input: parties' in order, then the relay's inventory.
    pub inputs: Vec<Vtxo>,
    /// Where each party's inputs are.
    pub spans: Vec<PartySpan>,
    /// The relay's inventory inputs (at the end of `inputs`).
    pub inventory: usize,
    /// The outputs in transaction order.
    pub outputs: Vec<BatchOutput>,
}

fn overflow() -> Rejection {
    Rejection::new(ErrorCode::InvalidAmount, "amount overflows")
}

fn colour(asset: AssetId, amount: u64) -> Option<Colour> {
    (amount > 0).then_some(Colour {
        asset,
        amount: AssetAmount::new(amount),
    })
}

/// Plans the batch of `parties` from their VTXOs (`vtxos[i]` for party `i`)
/// and the relay's free `inventory`.
pub fn plan_batch(
    parties: &[PartyRequest],
    vtxos: &[Vec<Vtxo>],
    inventory: &[Vtxo],
    relay: &PubKey,
    dust: Sats,
) -> Result<BatchPlan, Rejection> {
    let mut inputs: Vec<Vtxo> = Vec::new();
    let mut spans = Vec::with_capacity(parties.len());
    let mut outputs: Vec<BatchOutput> = Vec::new();
    let mut shortfall = Sats::ZERO;
    for (i, p) in parties.iter().enumerate() {
        let theirs = vtxos.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let (mine, have) = select_coloured(&p.author, &p.draw, p.named.as_deref(), theirs)
            .map_err(|r| Rejection::new(r.code, format!("party {i}: {}", r.message)))?;
        let first_output = outputs.len();
        for pay in &p.payments {
            outputs.push(BatchOutput {
                owner: pay.recipient,
                sats: dust,
                hint: Some(pay.colour),
                colour: Some(pay.colour),
                party: Some(i),
            });
        }
        for (asset, held) in &have {
            let change = held
                .checked_sub(p.draw.get(asset).copied().unwrap_or(0))
                .ok_or_else(overflow)?;
            if change > 0 {
                outputs.push(BatchOutput {
                    owner: p.author,
                    sats: dust,
                    hint: colour(*asset, change),
                    colour: colour(*asset, change),
                    party: Some(i),
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
                    None if extra >= dust => outputs.push(BatchOutput {
                        owner: p.author,
                        sats: extra,
                        hint: None,
                        colour: None,
                        party: Some(i),
                    }),
                    None => {
                        outputs[first_output].sats = outputs[first_output]
                            .sats
                            .checked_add(extra)
                            .ok_or_else(overflow)?
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

    // Burns: the issuer's received colour shrinks (largest outputs first).
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
        }
    }

    // Carrier sats from the relay's inventory, plus one recovery input.
    let mut pool: Vec<&Vtxo> = inventory
        .iter()
        .filter(|v| &v.owner == relay && v.status == VtxoStatus::Available)
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
    if got < shortfall || chosen.is_empty() {
        return Err(Rejection::new(
            ErrorCode::BackendUnavailable,
            "the relay's VTXO inventory cannot cover carrier sats right now",
        ));
    }
    let rest = got.checked_sub(shortfall).ok_or_else(overflow)?;
    if rest >= dust {
        outputs.push(BatchOutput {
            owner: *relay,
            sats: rest,
            hint: None,
            colour: None,
            party: None,
        });
    } else if rest > Sats::ZERO {
        // Too small for an output: left in the first fee output.
        let k = outputs.iter().position(|o| o.owner == *relay).unwrap_or(0);
        outputs[k].sats = outputs[k].sats.checked_add(rest).ok_or_else(overflow)?;
    }
    let inventory_count = chosen.len();
    inputs.extend(chosen);
    Ok(BatchPlan {
        inputs,
        spans,
        inventory: inventory_count,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use ark_relay_core::{Tapscripts, UnixTime};
    use bitcoin::hashes::Hash;

    use super::*;

    fn key(n: u8) -> PubKey {
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&[n; 32]).expect("key");
        PubKey::from_x_only(sk.x_only_public_key(&secp).0)
    }

    fn vtxo(n: u8, owner: PubKey, sats: u64, colour: Option<(u8, u64)>) -> Vtxo {
        Vtxo {
            id: VtxoId::new(bitcoin::Txid::from_byte_array([n; 32]), 0),
            owner,
            sats: Sats::new(sats),
            colour: colour.map(|(a, amount)| Colour {
                asset: AssetId::from_bytes([a; 32]),
                amount: AssetAmount::new(amount),
            }),
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

    fn pay(to: PubKey, col: Colour, fee: bool) -> PartyPayment {
        PartyPayment {
            recipient: to,
            colour: col,
            fee,
        }
    }

    #[test]
    fn a_swap_conserves_colour_and_sats() {
        let (alice, dex, relay) = (key(1), key(2), key(3));
        let (gbtc, gusd) = (7u8, 8u8);
        let parties = vec![
            PartyRequest {
                author: alice,
                payments: vec![
                    pay(dex, c(gbtc, 1_000), false),
                    pay(relay, c(gbtc, 10), true),
                ],
                draw: [(AssetId::from_bytes([gbtc; 32]), 1_010)].into(),
                burn: BTreeMap::new(),
                named: None,
            },
            PartyRequest {
                author: dex,
                payments: vec![
                    pay(alice, c(gusd, 650), false),
                    pay(relay, c(gbtc, 10), true),
                ],
                draw: [
                    (AssetId::from_bytes([gusd; 32]), 650),
                    (AssetId::from_bytes([gbtc; 32]), 10),
                ]
                .into(),
                burn: BTreeMap::new(),
                named: None,
            },
        ];
        let vtxos = vec![
            vec![vtxo(1, alice, 330, Some((gbtc, 5_000)))],
            vec![
                vtxo(2, dex, 330, Some((gusd, 10_000))),
                vtxo(3, dex, 330, Some((gbtc, 100))),
            ],
        ];
        let inv = [inv(9, relay, 5_000), inv(8, relay, 1_000)];
        let p = plan_batch(&parties, &vtxos, &inv, &relay, Sats::new(330)).expect("plan");
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
        assert!(p.inventory >= 1, "always a recovery input");
        let ins: u64 = p.inputs.iter().map(|v| v.sats.get()).sum();
        let outs: u64 = p.outputs.iter().map(|o| o.sats.get()).sum();
        assert_eq!(ins, outs, "sats conserved");
        let mut colour_in: BTreeMap<AssetId, u64> = BTreeMap::new();
        for col in p.inputs.iter().filter_map(|v| v.colour) {
            *colour_in.entry(col.asset).or_default() += col.amount.get();
        }
        let mut colour_out: BTreeMap<AssetId, u64> = BTreeMap::new();
        for col in p.outputs.iter().filter_map(|o| o.colour) {
            *colour_out.entry(col.asset).or_default() += col.amount.get();
        }
        assert_eq!(colour_in, colour_out, "colour conserved");
        assert!(p.outputs.iter().all(|o| o.sats >= Sats::new(330)));
    }

    #[test]
    fn a_mint_needs_no_input_and_a_burn_strips_colour() {
        let (alice, dex, relay) = (key(1), key(2), key(3));
        let lp = 5u8;
        let gbtc = 7u8;
        // Alice pays 100 LP to the DEX, which burns them; the DEX mints 40 LP to Alice.
        let parties = vec![
            PartyRequest {
                author: alice,
                payments: vec![pay(dex, c(lp, 100), false), pay(relay, c(gbtc, 10), true)],
                draw: [
                    (AssetId::from_bytes([lp; 32]), 100),
                    (AssetId::from_bytes([gbtc; 32]), 10),
                ]
                .into(),
                burn: BTreeMap::new(),
                named: None,
            },
            PartyRequest {
                author: dex,
                payments: vec![pay(alice, c(lp, 40), false), pay(relay, c(gbtc, 10), true)],
                draw: [(AssetId::from_bytes([gbtc; 32]), 10)].into(),
                burn: [(AssetId::from_bytes([lp; 32]), 100)].into(),
                named: None,
            },
        ];
        let vtxos = vec![
            vec![
                vtxo(1, alice, 330, Some((lp, 100))),
                vtxo(4, alice, 330, Some((gbtc, 10))),
            ],
            vec![vtxo(3, dex, 330, Some((gbtc, 10)))],
        ];
        let inv = [inv(9, relay, 5_000)];
        let p = plan_batch(&parties, &vtxos, &inv, &relay, Sats::new(330)).expect("plan");
        let to_dex: Vec<_> = p.outputs.iter().filter(|o| o.owner == dex).collect();
        assert_eq!(to_dex.len(), 1);
        assert_eq!(to_dex[0].hint, Some(c(lp, 100)), "Alice sees her payment");
        assert_eq!(to_dex[0].colour, None, "the ledger burns it");
        assert!(p.spans[1].inputs == 1, "the mint needs no LP input");
    }
}
