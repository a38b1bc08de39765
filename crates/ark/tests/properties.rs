//! Property tests: random payments build, survive arkd's rebuild check, sign and
//! verify, and give the same txids as ark-core.

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

mod common;

use ark_relay_ark::taptree::{decode_taptree, encode_taptree};
use ark_relay_ark::{
    build_offchain_tx, is_fully_signed, sign_psbt, verify_offchain_tx, Closure, Output,
    RelativeLocktime,
};
use ark_relay_core::Sats;
use bitcoin::ScriptBuf;
use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_payments_round_trip(
        amounts in proptest::collection::vec(1u64..100_000, 1..5),
        cut in 0u64..=100,
        fee in 0u64..50,
    ) {
        let p = parties();
        let s = server(&p);
        let owners = [&p.alice, &p.carol];
        let inputs: Vec<_> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| input(&s, owners[i % 2], u8::try_from(i + 1).unwrap(), *a))
            .collect();
        let total: u64 = amounts.iter().sum();
        let fee = fee.min(total);
        let to_bob = (total - fee) * cut / 100;
        let change = total - fee - to_bob;
        let mut outputs = vec![];
        for (owner, sats) in [(&p.bob, to_bob), (&p.eve, fee), (&p.alice, change)] {
            if sats > 0 {
                outputs.push(Output::Vtxo { owner: pubkey(owner), sats: Sats::new(sats) });
            }
        }
        let mut tx = build_offchain_tx(&s, &inputs, &outputs).unwrap();
        prop_assert_eq!(
            verify_offchain_tx(&s, &tx.ark_tx, &tx.checkpoints).unwrap().ark_txid(),
            tx.ark_txid()
        );
        for kp in [&p.alice, &p.carol, &p.signer] {
            sign_psbt(&mut tx.ark_tx, kp).unwrap();
        }
        prop_assert!(is_fully_signed(&tx.ark_tx).unwrap());
    }

    #[test]
    fn csv_leaves_round_trip(blocks in any::<u16>(), intervals in any::<u16>()) {
        let k = pubkey(&keypair(9));
        for lt in [RelativeLocktime::blocks(blocks), RelativeLocktime::seconds(u32::from(intervals) * 512).unwrap()] {
            let leaf = ark_relay_ark::script::csv_script(k.x_only(), lt);
            match Closure::decode(&leaf) {
                Some(Closure::CsvMultisig { locktime, .. }) => prop_assert_eq!(locktime, lt),
                other => prop_assert!(false, "{other:?}"),
            }
        }
    }

    #[test]
    fn taptree_round_trips(leaves in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 1..6)) {
        let leaves: Vec<ScriptBuf> = leaves.into_iter().map(ScriptBuf::from_bytes).collect();
        prop_assert_eq!(decode_taptree(&encode_taptree(&leaves)).unwrap(), leaves);
    }
}
