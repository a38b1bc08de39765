//! The arkd simulator's asset rules (research/ark-assets.md §5): what arkd
//! accepts (the research note's worked transfer, a reissuance that spends its
//! control asset) and what it refuses, with arkd's error names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ark_relay_ark::asset::{
    asset_metadata, control_arkade_id, control_ledger_id, genesis_packet, ledger_id,
    packet_for_colours_with, ArkadeAssetId, AssetGroup, AssetInput, AssetOutput, AssetRef, IdMap,
    Packet,
};
use ark_relay_ark::script::anchor_output;
use ark_relay_core::{AssetAmount, Colour};
use ark_relay_sim::arkd::assets::{apply, validate, AssetRecord, Denominations, Rules};
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid};

const X: &str = "58534acb681218c0fda8f6b6ae3b4cb5d8897e7c5fcba5792621c368b3db479c0000";

fn id(s: &str) -> ArkadeAssetId {
    s.parse().unwrap()
}

fn control() -> ArkadeAssetId {
    id(&format!("{}0000", "cc".repeat(32)))
}

fn vtxo_out(n: u8) -> TxOut {
    let mut script = vec![0x51, 0x20];
    script.extend([n; 32]);
    TxOut {
        value: Amount::from_sat(330),
        script_pubkey: ScriptBuf::from_bytes(script),
    }
}

/// `inputs` ark-tx inputs, `outputs` VTXO outputs, then the packet(s), then the anchor.
fn tx(inputs: usize, outputs: usize, packets: &[&Packet]) -> Transaction {
    let mut output: Vec<TxOut> = (0..outputs).map(|n| vtxo_out(n as u8 + 1)).collect();
    output.extend(packets.iter().map(|p| p.to_txout()));
    output.push(anchor_output());
    Transaction {
        version: Version(3),
        lock_time: LockTime::ZERO,
        input: (0..inputs)
            .map(|n| TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([n as u8 + 1; 32]),
                    vout: 0,
                },
                ..TxIn::default()
            })
            .collect(),
        output,
    }
}

fn group(asset: Option<ArkadeAssetId>, ins: &[(u16, u64)], outs: &[(u16, u64)]) -> AssetGroup {
    AssetGroup {
        asset_id: asset,
        control_asset: None,
        metadata: None,
        inputs: ins
            .iter()
            .map(|(i, a)| AssetInput {
                input_index: *i,
                amount: *a,
            })
            .collect(),
        outputs: outs
            .iter()
            .map(|(i, a)| AssetOutput {
                output_index: *i,
                amount: *a,
            })
            .collect(),
    }
}

fn worked() -> Packet {
    Packet {
        groups: vec![group(
            Some(id(X)),
            &[(0, 1500)],
            &[(0, 1000), (1, 490), (2, 10)],
        )],
    }
}

fn holding(list: &[(u16, ArkadeAssetId, u64)]) -> BTreeMap<u16, Denominations> {
    let mut m: BTreeMap<u16, Denominations> = BTreeMap::new();
    for (vin, a, n) in list {
        m.entry(*vin).or_default().push((*a, *n));
    }
    m
}

fn table() -> BTreeMap<String, AssetRecord> {
    BTreeMap::from([
        (
            X.to_owned(),
            AssetRecord {
                control: Some(control()),
                metadata: vec![],
            },
        ),
        (
            control().to_string(),
            AssetRecord {
                control: None,
                metadata: vec![],
            },
        ),
    ])
}

fn refused(tx: &Transaction, prevouts: &BTreeMap<u16, Denominations>, name: &str, needle: &str) {
    let e = validate(tx, prevouts, &table(), 3, Rules::Full).expect_err(name);
    assert_eq!(e.name, name, "{e:?}");
    assert!(
        e.message.contains(needle),
        "{:?} lacks {needle:?}",
        e.message
    );
}

#[test]
fn the_worked_transfer_is_accepted_and_assigns_each_output() {
    let p = worked();
    let t = tx(1, 3, &[&p]);
    let got = validate(&t, &holding(&[(0, id(X), 1500)]), &table(), 3, Rules::Full).unwrap();
    assert!(got.is_some());
    let (by_out, issued) = apply(&t, &p);
    assert_eq!(by_out[&1], vec![(id(X), 490)]);
    assert!(issued.is_empty());
}

#[test]
fn an_asset_input_spent_without_a_packet_is_refused() {
    let t = tx(1, 1, &[]);
    refused(
        &t,
        &holding(&[(0, id(X), 1500)]),
        "ASSET_VALIDATION_FAILED",
        "asset packet not found in tx",
    );
    // Without assets in, no packet is needed.
    assert!(validate(&t, &BTreeMap::new(), &table(), 3, Rules::Full)
        .unwrap()
        .is_none());
}

#[test]
fn two_extension_outputs_are_refused() {
    let p = worked();
    let t = tx(1, 3, &[&p, &p]);
    refused(
        &t,
        &holding(&[(0, id(X), 1500)]),
        "MALFORMED_ARK_TX",
        "multiple extension outputs",
    );
}

#[test]
fn outputs_above_the_inputs_without_the_control_asset_are_refused() {
    // 1 501 out of 1 500 in: a reissuance, and the control asset is not spent.
    let p = Packet {
        groups: vec![group(Some(id(X)), &[(0, 1500)], &[(0, 1001), (1, 500)])],
    };
    let prev = holding(&[(0, id(X), 1500)]);
    refused(&tx(1, 2, &[&p]), &prev, "ASSET_NOT_FOUND", "control asset");
    // An empty group naming the control asset does not count (stricter than arkd).
    let mut sneaky = p.clone();
    sneaky.groups.push(group(Some(control()), &[], &[]));
    refused(
        &tx(1, 2, &[&sneaky]),
        &prev,
        "ASSET_NOT_FOUND",
        "control asset",
    );
    // Spending and re-outputting the control asset makes it a valid reissuance.
    let mut ok = p.clone();
    ok.groups.push(group(Some(control()), &[(1, 1)], &[(2, 1)]));
    let prev = holding(&[(0, id(X), 1500), (1, control(), 1)]);
    assert!(validate(&tx(2, 3, &[&ok]), &prev, &table(), 3, Rules::Full).is_ok());
    // An unknown asset cannot be reissued at all.
    let unknown = id(&format!("{}0000", "ab".repeat(32)));
    let p = Packet {
        groups: vec![group(Some(unknown), &[], &[(0, 1)])],
    };
    refused(
        &tx(1, 1, &[&p]),
        &BTreeMap::new(),
        "ASSET_VALIDATION_FAILED",
        "unknown asset",
    );
}

#[test]
fn an_issuance_without_its_control_asset_is_refused() {
    let mut g = group(None, &[], &[(0, 21_000_000)]);
    g.control_asset = Some(AssetRef::ById(control()));
    let p = Packet { groups: vec![g] };
    refused(
        &tx(1, 1, &[&p]),
        &BTreeMap::new(),
        "ASSET_NOT_FOUND",
        "control asset",
    );
    // Controlled by a new asset issued in the same packet: accepted, and
    // recorded with its control.
    let mut g = group(None, &[], &[(0, 21_000_000)]);
    g.control_asset = Some(AssetRef::ByGroup(1));
    let p = Packet {
        groups: vec![g, group(None, &[], &[(1, 1)])],
    };
    let t = tx(1, 2, &[&p]);
    validate(&t, &BTreeMap::new(), &table(), 3, Rules::Full).unwrap();
    let (_, issued) = apply(&t, &p);
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0].1.control, Some(issued[1].0));
}

#[test]
fn inputs_must_be_listed_with_their_exact_amounts() {
    let p = worked();
    let t = tx(1, 3, &[&p]);
    refused(
        &t,
        &holding(&[(0, id(X), 1499)]),
        "ASSET_INPUT_INVALID",
        "mismatch prevout amount",
    );
    let other = id(&format!("{}0000", "dd".repeat(32)));
    refused(
        &t,
        &holding(&[(0, id(X), 1500), (0, other, 5)]),
        "ASSET_NOT_FOUND",
        "not found in packet",
    );
    // Assets to the extension or the anchor output are refused.
    let p = Packet {
        groups: vec![group(Some(id(X)), &[(0, 1500)], &[(0, 1000), (1, 500)])],
    };
    refused(
        &tx(1, 1, &[&p]),
        &holding(&[(0, id(X), 1500)]),
        "ASSET_OUTPUT_INVALID",
        "cannot receive assets",
    );
}

#[test]
fn bridged_rules_check_every_asset_issued_on_ark_and_only_those() {
    let bridged = |t: &Transaction, prev: &BTreeMap<u16, Denominations>| {
        validate(t, prev, &table(), 3, Rules::Bridged)
    };
    // X was issued on Ark (it is in the table): inflating it is refused.
    let p = Packet {
        groups: vec![group(Some(id(X)), &[(0, 1500)], &[(0, 1001), (1, 500)])],
    };
    let e = bridged(&tx(1, 2, &[&p]), &holding(&[(0, id(X), 1500)])).unwrap_err();
    assert_eq!(e.name, "ASSET_NOT_FOUND", "{e:?}");
    // An issuance naming a control asset it does not spend is refused too.
    let mut g = group(None, &[], &[(0, 7)]);
    g.control_asset = Some(AssetRef::ById(control()));
    let e = bridged(&tx(1, 1, &[&Packet { groups: vec![g] }]), &BTreeMap::new()).unwrap_err();
    assert_eq!(e.name, "ASSET_NOT_FOUND", "{e:?}");
    // An id arkd never saw issued (colour seeded outside Ark) may be minted.
    let seeded = id(&format!("{}0000", "ab".repeat(32)));
    let p = Packet {
        groups: vec![group(Some(seeded), &[], &[(0, 1)])],
    };
    assert!(bridged(&tx(1, 1, &[&p]), &BTreeMap::new()).is_ok());
    // Listing every asset an input holds is required in both modes.
    let e = bridged(&tx(1, 1, &[]), &holding(&[(0, seeded, 1)])).unwrap_err();
    assert_eq!(e.name, "ASSET_VALIDATION_FAILED", "{e:?}");
}

#[test]
fn a_relay_genesis_then_lifts_as_reissuances_pass_arkds_full_rules() {
    // Genesis: 1 unit to the relay (output 0), the control asset to output 1.
    let meta = asset_metadata("Relay-issued BTC", "gBTC", 0, None);
    let p = genesis_packet(0, 1, 1, meta.clone()).unwrap();
    let g = tx(1, 3, &[&p]);
    let mut table = BTreeMap::new();
    validate(&g, &BTreeMap::new(), &table, 3, Rules::Full).unwrap();
    let (by_out, issued) = apply(&g, &p);
    for (id, record) in issued {
        table.insert(id.to_string(), record);
    }
    let t = g.compute_txid();
    let asset_arkade = ArkadeAssetId {
        txid: t,
        group_index: 0,
    };
    let asset = ledger_id(&asset_arkade).unwrap();
    assert_eq!(control_arkade_id(&asset).txid, t);
    assert_eq!(by_out[&0], vec![(asset_arkade, 1)]);
    assert_eq!(by_out[&1], vec![(control_arkade_id(&asset), 1)]);
    assert_eq!(table[&asset_arkade.to_string()].metadata, meta);
    assert_eq!(
        table[&asset_arkade.to_string()].control,
        Some(control_arkade_id(&asset))
    );

    // A lift: the control VTXO (input 0) and a carrier (input 1) in; 500 to
    // the user (output 0), the control asset back to the relay (output 1).
    let col = |a, n| {
        Some(Colour {
            asset: a,
            amount: AssetAmount::new(n),
        })
    };
    let control = control_ledger_id(&asset);
    let ids = IdMap::bridged().with_control(&asset);
    let lift = packet_for_colours_with(
        &[col(control, 1), None],
        &[col(asset, 500), col(control, 1), None],
        &ids,
    )
    .unwrap()
    .unwrap();
    let prev = holding(&[(0, control_arkade_id(&asset), 1)]);
    validate(&tx(2, 3, &[&lift]), &prev, &table, 3, Rules::Full).unwrap();
    // The same lift without the control asset is refused.
    let bare = packet_for_colours_with(&[None], &[col(asset, 500), None], &ids)
        .unwrap()
        .unwrap();
    let e = validate(
        &tx(1, 2, &[&bare]),
        &BTreeMap::new(),
        &table,
        3,
        Rules::Full,
    )
    .unwrap_err();
    assert_eq!(e.name, "ASSET_NOT_FOUND", "{e:?}");
}
