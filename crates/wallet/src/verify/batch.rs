//! The outputs of an atomic batch, checked against one party's intent.

use super::*;

/// The outputs of a batch ark tx, from one party's point of view (PRD §5.2;
/// docs/protocol.md "What the wallet MUST verify", 9–11): the transaction
/// also pays the other parties, so only my legs are checked, exactly:
///
/// - every colour hint names an output that is its owner's default VTXO;
/// - every payment of my intent (fee included) is a hinted output;
/// - the colour of all outputs I own equals, per asset, my change (my
///   inputs + what I mint − what I pay) plus what my `counterparty_leg`s say
///   I receive — nothing missing, nothing extra;
/// - my inputs' sats go only to outputs I own or to my payments' outputs.
///
/// Returns every problem found.
pub(super) fn check_batch_outputs(
    ctx: &Context<'_>,
    intent: &AuthorisedIntent,
    psbt: &Psbt,
    payload: &ark_relay_protocol::content::PayloadToSign,
    in_colour: &BTreeMap<AssetId, u64>,
    in_sats: u64,
) -> Vec<String> {
    let mut why = Vec::new();
    let outs = &psbt.unsigned_tx.output;
    let script_of = |owner: PubKey, sats: u64| {
        Output::Vtxo {
            owner,
            sats: Sats::new(sats),
        }
        .to_tx_out(ctx.server)
        .script_pubkey
    };
    // (output index, owner, asset, amount) of every well-formed hint.
    let mut hinted: Vec<(usize, PubKey, AssetId, u64)> = Vec::new();
    let mut seen = vec![false; outs.len()];
    for h in &payload.colour {
        let o = h.output_index as usize;
        let Some(out) = outs.get(o).filter(|_| h.psbt_index == 0) else {
            why.push(format!("colour hint names missing output {o}"));
            continue;
        };
        if is_anchor(&out.script_pubkey) || std::mem::replace(&mut seen[o], true) {
            why.push(format!("output {o}: bad or repeated colour hint"));
            continue;
        }
        let Ok(owner) = h.owner.parse::<PubKey>() else {
            why.push(format!("output {o}: owner {:?} is not a key", h.owner));
            continue;
        };
        let Some(asset) = ctx.assets.resolve(&h.asset) else {
            why.push(format!("output {o}: unknown asset {}", h.asset));
            continue;
        };
        if script_of(owner, out.value.to_sat()) != out.script_pubkey
            && !super::perps::is_position_output(ctx, intent, &owner, asset, h.amount, out)
        {
            why.push(format!(
                "output {o} is not a VTXO of {owner}, whom its colour hint names"
            ));
            continue;
        }
        hinted.push((o, owner, asset, h.amount));
    }
    let name = |a: &AssetId| ctx.assets.name(a);
    // My payments: each one a distinct hinted output.
    let mut used = vec![false; outs.len()];
    let mut my_sats: u64 = 0;
    let mut paid: BTreeMap<AssetId, u64> = BTreeMap::new();
    for want in &intent.payments {
        add(&mut paid, want.asset, want.amount);
        let hit = hinted.iter().find(|(o, owner, asset, amount)| {
            !used[*o] && *owner == want.recipient && *asset == want.asset && *amount == want.amount
        });
        match hit {
            Some((o, ..)) => {
                used[*o] = true;
                my_sats = my_sats.saturating_add(outs[*o].value.to_sat());
            }
            None => why.push(format!(
                "outputs do not match my intent: no output pays {} {} to {}",
                want.amount,
                name(&want.asset),
                want.recipient
            )),
        }
    }
    // What I own after the batch, per asset.
    let mut mine: BTreeMap<AssetId, u64> = BTreeMap::new();
    for (o, owner, asset, amount) in &hinted {
        if owner == ctx.me {
            add(&mut mine, *asset, *amount);
            used[*o] = true;
            // A position token is mine at its conditional script, not my default one.
            let sats = outs[*o].value.to_sat();
            if outs[*o].script_pubkey != script_of(*ctx.me, sats) {
                my_sats = my_sats.saturating_add(sats);
            }
        }
    }
    for (o, out) in outs.iter().enumerate() {
        if out.script_pubkey == script_of(*ctx.me, out.value.to_sat()) {
            my_sats = my_sats.saturating_add(out.value.to_sat());
            used[o] = true;
        }
    }
    let mut expected: BTreeMap<AssetId, i128> = BTreeMap::new();
    for (a, n) in in_colour {
        *expected.entry(*a).or_default() += i128::from(*n);
    }
    for (a, n) in &intent.mint {
        *expected.entry(*a).or_default() += i128::from(*n);
    }
    for (a, n) in &paid {
        *expected.entry(*a).or_default() -= i128::from(*n);
    }
    for (a, n) in &expected {
        if *n < 0 {
            why.push(format!(
                "my inputs do not cover my payments of {}: short by {}",
                name(a),
                -n
            ));
        }
    }
    for r in &intent.receives {
        *expected.entry(r.asset).or_default() += i128::from(r.amount);
    }
    let assets: std::collections::BTreeSet<AssetId> =
        expected.keys().chain(mine.keys()).copied().collect();
    for a in assets {
        let want = expected.get(&a).copied().unwrap_or(0).max(0);
        let got = i128::from(mine.get(&a).copied().unwrap_or(0));
        if want != got {
            why.push(format!(
                "outputs do not match my intent: I should own {want} {} after the batch (change + what I receive), the outputs give me {got}",
                name(&a)
            ));
        }
    }
    if in_sats > my_sats {
        why.push(format!(
            "my inputs' {in_sats} sats exceed the {my_sats} sats of my outputs and my payments"
        ));
    }
    why
}
