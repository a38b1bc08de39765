//! The wallet's check of an ark tx's Arkade Asset packet (DESIGN.md §6,
//! docs/protocol.md "The asset packet"): colour is read from the transaction
//! the wallet signs, not from the relay's `colour` hints, and the two must agree.
//!
//! Pure: given the PSBT, the hints and the colour of the wallet's own inputs
//! (as its own state knows them, and as the Ark server's indexer lists them),
//! it returns every reason to refuse.

use std::collections::BTreeMap;

use ark_relay_ark::asset::{
    arkade_id, input_assets, ledger_id, output_assets, tx_packet, ArkadeAssetId,
};
use ark_relay_core::{AssetId, VtxoId};
use ark_relay_protocol::content::ColourHint;
use bitcoin::Psbt;

use crate::verify::{AssetBook, IndexerView};

/// Checks the packet of `psbt` against the hints and my inputs:
///
/// - a packet is present when anything is coloured, decodes as arkd decodes it
///   (one extension output of value 0, canonical bytes) and names only assets
///   that already exist (no issuance in a transaction I sign);
/// - each input I sign (`mine`: input index and its colour as I know it) is
///   listed with exactly its colour, and an uncoloured one not at all;
/// - each output the packet colours has a hint with the same asset and
///   amount, and each hinted output gets exactly its hint's `amount − burned`
///   from the packet (`burned`: what its owner burns on arrival, e.g. the
///   relay in a land);
/// - the packet colours no output that has no hint.
pub fn check_packet(
    psbt: &Psbt,
    hints: &[ColourHint],
    book: &AssetBook,
    mine: &[(usize, Option<(AssetId, u64)>)],
) -> Vec<String> {
    let mut why = Vec::new();
    let tx = &psbt.unsigned_tx;
    let txid = tx.compute_txid();
    let packet = match tx_packet(tx) {
        Ok(p) => p.map(|(_, p)| p),
        Err(e) => return vec![format!("asset packet: {e}")],
    };
    let coloured_input = mine.iter().any(|(_, c)| c.is_some());
    let Some(packet) = packet else {
        if coloured_input || !hints.is_empty() {
            why.push("the transaction carries no asset packet, yet colour moves".to_owned());
        }
        return why;
    };
    if packet.groups.iter().any(|g| g.asset_id.is_none()) {
        why.push("the asset packet issues a new asset".to_owned());
    }
    let by_in = input_assets(&packet);
    for (i, colour) in mine {
        let want: Vec<_> = colour
            .map(|(a, n)| (arkade_id(&a), n))
            .into_iter()
            .collect();
        let got = u32::try_from(*i)
            .ok()
            .and_then(|i| by_in.get(&i))
            .cloned()
            .unwrap_or_default();
        // Compared in ledger form: a control asset I hold (an LP token's,
        // group 1 of its genesis) has a derived ledger id (`ledger_id`).
        let ledger = |l: &[(ArkadeAssetId, u64)]| -> Vec<_> {
            l.iter().map(|(id, n)| (ledger_id(id), *n)).collect()
        };
        if ledger(&got)
            != colour
                .map(|(a, n)| (Some(a), n))
                .into_iter()
                .collect::<Vec<_>>()
        {
            why.push(format!(
                "asset packet lists my input {i} as {}, I know it as {}",
                show(&got, book),
                show(&want, book)
            ));
        }
    }
    // Output index → (asset, amount the packet must give) of its hint.
    let mut hinted: BTreeMap<u32, (Option<AssetId>, u64)> = BTreeMap::new();
    for h in hints.iter().filter(|h| h.psbt_index == 0) {
        let Some(kept) = h.amount.checked_sub(h.burned) else {
            why.push(format!(
                "output {}: colour hint burns {} of {}",
                h.output_index, h.burned, h.amount
            ));
            continue;
        };
        hinted.insert(h.output_index, (book.resolve(&h.asset), kept));
    }
    let by_out = output_assets(txid, &packet);
    for (o, got) in &by_out {
        let Some((asset, amount)) = hinted.get(o) else {
            why.push(format!(
                "asset packet gives output {o} {} without a colour hint",
                show(got, book)
            ));
            continue;
        };
        let ok = match (got.as_slice(), asset) {
            ([(id, n)], Some(a)) => ledger_id(id) == Some(*a) && n == amount,
            _ => false,
        };
        if !ok {
            why.push(format!(
                "output {o}: the asset packet gives {}, the colour hint says {amount} {}",
                show(got, book),
                asset.map_or_else(|| "of an unknown asset".to_owned(), |a| book.name(&a))
            ));
        }
    }
    for (o, (_, amount)) in &hinted {
        if !by_out.contains_key(o) && *amount > 0 {
            why.push(format!(
                "output {o}: the colour hint says {amount}, the asset packet gives nothing"
            ));
        }
    }
    why
}

/// Checks the inputs I sign against the Ark server's indexer: each one
/// (`mine`: input index and VTXO) must be listed there as unspent, and the
/// packet must list it with exactly the assets the indexer says it holds.
/// This catches a relay that misstates my inputs' colour consistently in
/// `sync_state` and in the packet, which my own history cannot (a wallet
/// restored from its key has none).
pub fn check_inputs_at_indexer(
    psbt: &Psbt,
    mine: &[(usize, VtxoId)],
    view: &IndexerView,
    book: &AssetBook,
) -> Vec<String> {
    let mut why = Vec::new();
    // A packet that does not decode is reported by `check_packet`.
    let by_in = match tx_packet(&psbt.unsigned_tx) {
        Ok(Some((_, p))) => input_assets(&p),
        _ => BTreeMap::new(),
    };
    let key = |l: &[(ArkadeAssetId, u64)]| {
        let mut l: Vec<_> = l
            .iter()
            .map(|(id, n)| (id.txid, id.group_index, *n))
            .collect();
        l.sort();
        l
    };
    for (i, vtxo) in mine {
        let Some(held) = view.get(vtxo) else {
            why.push(format!(
                "the Ark server's indexer does not list my input {i} ({vtxo}) as unspent"
            ));
            continue;
        };
        let listed = u32::try_from(*i)
            .ok()
            .and_then(|i| by_in.get(&i))
            .cloned()
            .unwrap_or_default();
        if key(&listed) != key(held) {
            why.push(format!(
                "the Ark server's indexer says my input {i} ({vtxo}) holds {}, the asset packet lists {}",
                show(held, book),
                show(&listed, book)
            ));
        }
    }
    why
}

fn show(list: &[(ark_relay_ark::asset::ArkadeAssetId, u64)], book: &AssetBook) -> String {
    if list.is_empty() {
        return "no asset".to_owned();
    }
    list.iter()
        .map(|(id, n)| match ledger_id(id) {
            Some(a) => format!("{n} {}", book.name(&a)),
            None => format!("{n} of {id}"),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}
