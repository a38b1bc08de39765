//! Unit tests of the planner (`plan.rs`).

#![allow(clippy::unwrap_used)]

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
