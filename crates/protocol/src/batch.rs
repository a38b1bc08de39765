//! Consistency of an atomic batch (`submit_batch`, PRD §5.2): pure checks
//! over the validated intents of a batch, done before anything is locked,
//! and the colour-conservation rule every planned batch transaction obeys.
//!
//! The relay knows no AMM maths. It checks only that the intents agree with
//! each other: for every party, what the others pay it equals its
//! `counterparty_leg` (payer, asset, amount) and what it pays equals its
//! `my_leg`; each party pays its own fee; supply changes (`mint`, `burn`) come
//! only from the asset's issuer and are covered; colour is conserved per
//! asset. Every refusal names the mismatch.

use std::collections::{BTreeMap, BTreeSet};

use ark_relay_core::{AssetId, ErrorCode, EventId, PubKey};

use crate::content::{AssetRef, IntentType};
use crate::intent::{IntentPolicy, ValidIntent, ValidLeg};
use crate::Rejection;

/// Most intents in one batch.
pub const MAX_BATCH_INTENTS: usize = 16;

/// What one party's inputs must cover, per asset, after its `mint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyFlows {
    /// The party's intent.
    pub intent: EventId,
    /// The party.
    pub author: PubKey,
    /// Per asset: payments + fee − minted (what its own VTXOs must hold).
    pub draw: BTreeMap<AssetId, u64>,
    /// Per asset: units it mints.
    pub mint: BTreeMap<AssetId, u64>,
    /// Per asset: units it burns out of what it receives.
    pub burn: BTreeMap<AssetId, u64>,
}

/// The result of a consistent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// One entry per intent, in batch order.
    pub parties: Vec<PartyFlows>,
}

fn inconsistent(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::BatchInconsistent, msg)
}

fn short(k: &PubKey) -> String {
    let s = k.to_string();
    format!("{}…", &s[..s.len().min(12)])
}

fn add(map: &mut BTreeMap<AssetId, u64>, asset: AssetId, amount: u64) -> Result<(), Rejection> {
    let slot = map.entry(asset).or_default();
    *slot = slot
        .checked_add(amount)
        .ok_or_else(|| Rejection::new(ErrorCode::InvalidAmount, "amount overflows"))?;
    Ok(())
}

/// A leg resolved: (counterparty, asset, amount).
type LegFlow = (Option<PubKey>, AssetId, u64);

/// Describes a leg mismatch: (counterparty, asset, wanted, got).
type Describe<'a> = &'a dyn Fn(Option<&PubKey>, &AssetId, u64, u64) -> String;

/// Names assets in messages by the way the intents wrote them.
struct Names(BTreeMap<AssetId, String>);

impl Names {
    fn name(&self, a: &AssetId) -> String {
        self.0.get(a).cloned().unwrap_or_else(|| a.to_string())
    }
}

/// Compares actual flows `(counterparty, asset) → amount` with `legs`: legs
/// naming a counterparty must match that counterparty's flow exactly; the
/// flows from or to everyone else must add up, per asset, to the legs naming
/// no one.
fn match_legs(
    actual: &BTreeMap<(PubKey, AssetId), u64>,
    legs: &[LegFlow],
    describe: Describe<'_>,
) -> Result<(), Rejection> {
    let mut named: BTreeMap<(PubKey, AssetId), u64> = BTreeMap::new();
    let mut unnamed: BTreeMap<AssetId, u64> = BTreeMap::new();
    for (who, asset, amount) in legs {
        match who {
            Some(w) => {
                let slot = named.entry((*w, *asset)).or_default();
                *slot = slot.saturating_add(*amount);
            }
            None => {
                let slot = unnamed.entry(*asset).or_default();
                *slot = slot.saturating_add(*amount);
            }
        }
    }
    for ((who, asset), want) in &named {
        let got = actual.get(&(*who, *asset)).copied().unwrap_or(0);
        if got != *want {
            return Err(inconsistent(describe(Some(who), asset, *want, got)));
        }
    }
    let mut rest: BTreeMap<AssetId, u64> = BTreeMap::new();
    for ((who, asset), amount) in actual {
        if !named.contains_key(&(*who, *asset)) {
            let slot = rest.entry(*asset).or_default();
            *slot = slot.saturating_add(*amount);
        }
    }
    let assets: BTreeSet<AssetId> = rest.keys().chain(unnamed.keys()).copied().collect();
    for asset in assets {
        let (want, got) = (
            unnamed.get(&asset).copied().unwrap_or(0),
            rest.get(&asset).copied().unwrap_or(0),
        );
        if want != got {
            return Err(inconsistent(describe(None, &asset, want, got)));
        }
    }
    Ok(())
}

/// Checks that the validated `intents` of one batch agree (see the module
/// docs). `resolve` maps each asset reference to an asset id (`None`: 2003).
/// Refusals: 3001 for inconsistencies, 4001 for a missing fee, 1002 for a
/// repeated intent or a batch over [`MAX_BATCH_INTENTS`], 1003 for a type
/// that cannot be batched.
pub fn check_batch(
    intents: &[ValidIntent],
    policy: &IntentPolicy,
    resolve: &dyn Fn(&AssetRef) -> Option<AssetId>,
) -> Result<BatchSummary, Rejection> {
    if intents.len() > MAX_BATCH_INTENTS {
        return Err(Rejection::new(
            ErrorCode::Malformed,
            format!("a batch holds at most {MAX_BATCH_INTENTS} intents"),
        ));
    }
    if intents.len() < 2 {
        return Err(inconsistent(
            "a batch needs the intents of at least two parties",
        ));
    }
    let mut ids = BTreeSet::new();
    let mut authors = BTreeSet::new();
    for (i, v) in intents.iter().enumerate() {
        if !ids.insert(v.event_id) {
            return Err(Rejection::new(
                ErrorCode::Malformed,
                format!("intents[{i}] repeats intent {}", v.event_id),
            ));
        }
        if !authors.insert(v.author) {
            return Err(inconsistent(format!(
                "intents[{i}]: {} has two intents in the batch (one per party)",
                short(&v.author)
            )));
        }
        if v.intent_type == IntentType::LandLightning {
            return Err(Rejection::new(
                ErrorCode::UnsupportedAction,
                format!("intents[{i}]: land_lightning cannot be batched"),
            ));
        }
        if v.fee().is_none_or(|f| f.recipient != policy.relay) {
            return Err(Rejection::new(
                ErrorCode::FeeOutput,
                format!("intents[{i}] does not pay its fee to the relay"),
            ));
        }
    }

    let mut names = Names(BTreeMap::new());
    let mut res = |a: &AssetRef, i: usize| -> Result<AssetId, Rejection> {
        let id = resolve(a).ok_or_else(|| {
            Rejection::new(
                ErrorCode::UnknownVtxoOrAsset,
                format!("intents[{i}]: unknown asset {a}"),
            )
        })?;
        names.0.entry(id).or_insert_with(|| a.to_string());
        Ok(id)
    };

    // Every payment, resolved: (payer index, recipient, asset, amount, fee).
    struct Flow {
        payer: usize,
        recipient: PubKey,
        asset: AssetId,
        amount: u64,
        fee: bool,
    }
    let mut flows = Vec::new();
    let mut legs: Vec<(Vec<LegFlow>, Vec<LegFlow>)> = Vec::new();
    for (i, v) in intents.iter().enumerate() {
        for o in &v.outputs {
            if o.recipient == v.author {
                return Err(inconsistent(format!(
                    "intents[{i}]: {} pays itself",
                    short(&v.author)
                )));
            }
            flows.push(Flow {
                payer: i,
                recipient: o.recipient,
                asset: res(&o.asset, i)?,
                amount: o.amount,
                fee: o.fee,
            });
        }
        let mut conv = |l: &[ValidLeg]| -> Result<Vec<_>, Rejection> {
            l.iter()
                .map(|l| Ok((l.recipient, res(&l.asset, i)?, l.amount)))
                .collect()
        };
        let mine = conv(&v.my_legs)?;
        let theirs = conv(&v.counterparty_legs)?;
        legs.push((mine, theirs));
    }

    let mut parties = Vec::with_capacity(intents.len());
    for (i, v) in intents.iter().enumerate() {
        let who = short(&v.author);
        let (my_legs, counter_legs) = &legs[i];
        // What it sends (fee apart) against my_leg.
        let mut sent: BTreeMap<(PubKey, AssetId), u64> = BTreeMap::new();
        let mut paid: BTreeMap<AssetId, u64> = BTreeMap::new();
        for f in flows.iter().filter(|f| f.payer == i) {
            add(&mut paid, f.asset, f.amount)?;
            if !f.fee {
                let slot = sent.entry((f.recipient, f.asset)).or_default();
                *slot = slot.saturating_add(f.amount);
            }
        }
        if !my_legs.is_empty() {
            match_legs(&sent, my_legs, &|to, a, want, got| {
                match to {
                Some(to) => format!(
                    "intents[{i}]: {who}'s my_leg says it pays {want} {} to {}, its outputs pay {got}",
                    names.name(a),
                    short(to)
                ),
                None => format!(
                    "intents[{i}]: {who}'s my_leg says it pays {want} {}, its outputs pay {got}",
                    names.name(a)
                ),
            }
            })?;
        }
        // What the other parties send it against counterparty_leg.
        let mut received: BTreeMap<(PubKey, AssetId), u64> = BTreeMap::new();
        let mut received_total: BTreeMap<AssetId, u64> = BTreeMap::new();
        for f in flows
            .iter()
            .filter(|f| f.payer != i && f.recipient == v.author)
        {
            let payer = intents[f.payer].author;
            let slot = received.entry((payer, f.asset)).or_default();
            *slot = slot.saturating_add(f.amount);
            add(&mut received_total, f.asset, f.amount)?;
        }
        match_legs(&received, counter_legs, &|from, a, want, got| {
            match from {
            Some(from) => format!(
                "intents[{i}]: {who} expects {want} {} from {}, the batch gives it {got}",
                names.name(a),
                short(from)
            ),
            None => format!(
                "intents[{i}]: {who} expects {want} {} from the other parties, the batch gives it {got}",
                names.name(a)
            ),
        }
        })?;
        // Supply changes: covered by what it pays out / receives.
        let mut mint = BTreeMap::new();
        for m in &v.mint {
            let out = paid.get(&m.asset).copied().unwrap_or(0);
            if m.amount > out {
                return Err(inconsistent(format!(
                    "intents[{i}]: {who} mints {} {} but pays out only {out}",
                    m.amount, m.ticker
                )));
            }
            add(&mut mint, m.asset, m.amount)?;
        }
        let mut burn = BTreeMap::new();
        for b in &v.burn {
            let got = received_total.get(&b.asset).copied().unwrap_or(0);
            if b.amount > got {
                return Err(inconsistent(format!(
                    "intents[{i}]: {who} burns {} {} but receives only {got} in the batch",
                    b.amount, b.ticker
                )));
            }
            add(&mut burn, b.asset, b.amount)?;
        }
        let mut draw = paid.clone();
        for (a, m) in &mint {
            if let Some(slot) = draw.get_mut(a) {
                *slot -= m;
            }
        }
        draw.retain(|_, v| *v > 0);
        parties.push(PartyFlows {
            intent: v.event_id,
            author: v.author,
            draw,
            mint,
            burn,
        });
    }
    Ok(BatchSummary { parties })
}

/// Colour conservation of a planned batch transaction: per asset, colour of
/// the inputs + `issued` = colour of the outputs + `burned` (3001 otherwise,
/// naming the asset).
pub fn check_conservation(
    inputs: &[(AssetId, u64)],
    outputs: &[(AssetId, u64)],
    issued: &[(AssetId, u64)],
    burned: &[(AssetId, u64)],
) -> Result<(), Rejection> {
    let sum = |lists: [&[(AssetId, u64)]; 2]| -> Result<BTreeMap<AssetId, u64>, Rejection> {
        let mut m = BTreeMap::new();
        for (a, n) in lists.into_iter().flatten() {
            add(&mut m, *a, *n)?;
        }
        Ok(m)
    };
    let left = sum([inputs, issued])?;
    let right = sum([outputs, burned])?;
    let assets: BTreeSet<&AssetId> = left.keys().chain(right.keys()).collect();
    for a in assets {
        let (l, r) = (
            left.get(a).copied().unwrap_or(0),
            right.get(a).copied().unwrap_or(0),
        );
        if l != r {
            return Err(inconsistent(format!(
                "colour of asset {a} is not conserved: inputs + issued = {l}, outputs + burned = {r}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ark_relay_core::UnixTime;
    use nostr::Keys;

    use super::*;
    use crate::content::{l2_asset_id, IntentContent, SupplyChange, WireAmount};
    use crate::intent::validate_intent;
    use crate::{builders, pubkey_from_nostr};

    struct Ctx {
        relay: PubKey,
        policy: IntentPolicy,
        gbtc: AssetId,
        gusd: AssetId,
    }

    fn ctx() -> Ctx {
        let relay = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
        Ctx {
            relay,
            policy: IntentPolicy::new(relay),
            gbtc: AssetId::from_bytes([1; 32]),
            gusd: AssetId::from_bytes([2; 32]),
        }
    }

    fn pk(k: &Keys) -> PubKey {
        pubkey_from_nostr(&k.public_key()).expect("key")
    }

    impl Ctx {
        fn resolve(&self) -> impl Fn(&AssetRef) -> Option<AssetId> + '_ {
            move |a| match a {
                AssetRef::Ticker(t) if t == "gBTC" => Some(self.gbtc),
                AssetRef::Ticker(t) if t == "gUSD" => Some(self.gusd),
                AssetRef::Id(id) => Some(*id),
                AssetRef::Ticker(_) => None,
            }
        }

        fn valid(&self, k: &Keys, c: &IntentContent) -> ValidIntent {
            let ev = builders::intent(k, &self.relay, c).expect("intent");
            validate_intent(&ev, &self.policy, UnixTime::now()).expect("valid")
        }

        fn leg(
            &self,
            k: &Keys,
            kind: IntentType,
            pays: &[(PubKey, AssetRef, u64)],
            expects: &[(PubKey, AssetRef, u64)],
        ) -> IntentContent {
            IntentContent::batch_leg(
                kind,
                format!("a-{}", &pk(k).to_string()[..16]),
                pays,
                expects,
                &self.relay,
                10,
                UnixTime::now().0 + 600,
            )
        }

        fn check(&self, v: &[ValidIntent]) -> Result<BatchSummary, Rejection> {
            check_batch(v, &self.policy, &self.resolve())
        }
    }

    fn gbtc() -> AssetRef {
        AssetRef::gbtc()
    }

    fn gusd() -> AssetRef {
        AssetRef::Ticker("gUSD".into())
    }

    #[test]
    fn a_matching_swap_passes_and_says_what_each_party_draws() {
        let c = ctx();
        let (alice, dex) = (Keys::generate(), Keys::generate());
        let (a, d) = (pk(&alice), pk(&dex));
        let ia = c.valid(
            &alice,
            &c.leg(
                &alice,
                IntentType::AtomicSwap,
                &[(d, gbtc(), 1_000)],
                &[(d, gusd(), 650)],
            ),
        );
        let id = c.valid(
            &dex,
            &c.leg(
                &dex,
                IntentType::AtomicSwap,
                &[(a, gusd(), 650)],
                &[(a, gbtc(), 1_000)],
            ),
        );
        let s = c.check(&[ia, id]).expect("consistent");
        assert_eq!(s.parties[0].draw, [(c.gbtc, 1_010)].into());
        assert_eq!(s.parties[1].draw, [(c.gbtc, 10), (c.gusd, 650)].into());
    }

    #[test]
    fn a_leg_off_by_one_unit_is_3001_naming_it() {
        let c = ctx();
        let (alice, dex) = (Keys::generate(), Keys::generate());
        let (a, d) = (pk(&alice), pk(&dex));
        let ia = c.valid(
            &alice,
            &c.leg(
                &alice,
                IntentType::AtomicSwap,
                &[(d, gbtc(), 1_000)],
                &[(d, gusd(), 650)],
            ),
        );
        let id = c.valid(
            &dex,
            &c.leg(
                &dex,
                IntentType::AtomicSwap,
                &[(a, gusd(), 649)],
                &[(a, gbtc(), 1_000)],
            ),
        );
        let r = c.check(&[ia, id]).expect_err("off by one");
        assert_eq!(r.code, ErrorCode::BatchInconsistent);
        assert!(r.message.contains("expects 650 gUSD"), "{}", r.message);
        assert!(r.message.contains("gives it 649"), "{}", r.message);
    }

    #[test]
    fn my_leg_must_match_the_outputs() {
        let c = ctx();
        let (alice, dex) = (Keys::generate(), Keys::generate());
        let (a, d) = (pk(&alice), pk(&dex));
        let mut content = c.leg(
            &alice,
            IntentType::AtomicSwap,
            &[(d, gbtc(), 1_000)],
            &[(d, gusd(), 650)],
        );
        content.outputs[0].amount = WireAmount::new(999);
        let ia = c.valid(&alice, &content);
        let id = c.valid(
            &dex,
            &c.leg(
                &dex,
                IntentType::AtomicSwap,
                &[(a, gusd(), 650)],
                &[(a, gbtc(), 999)],
            ),
        );
        let r = c.check(&[ia, id]).expect_err("my_leg");
        assert!(
            r.message.contains("my_leg says it pays 1000"),
            "{}",
            r.message
        );
    }

    #[test]
    fn structural_refusals() {
        let c = ctx();
        let (alice, bob, dex) = (Keys::generate(), Keys::generate(), Keys::generate());
        let (b, d) = (pk(&bob), pk(&dex));
        let ia = c.valid(
            &alice,
            &c.leg(
                &alice,
                IntentType::AtomicSwap,
                &[(d, gbtc(), 5)],
                &[(d, gusd(), 5)],
            ),
        );
        let code = |v: &[ValidIntent]| c.check(v).map(|_| ()).map_err(|r| r.code);
        assert_eq!(
            code(std::slice::from_ref(&ia)),
            Err(ErrorCode::BatchInconsistent)
        );
        assert_eq!(code(&[ia.clone(), ia.clone()]), Err(ErrorCode::Malformed));
        let mut again = c.leg(
            &alice,
            IntentType::AtomicSwap,
            &[(b, gbtc(), 5)],
            &[(b, gusd(), 5)],
        );
        again.action_id = "other".into();
        let second = c.valid(&alice, &again);
        assert_eq!(
            code(&[ia.clone(), second]),
            Err(ErrorCode::BatchInconsistent)
        );
        let mut unknown = c.leg(
            &dex,
            IntentType::AtomicSwap,
            &[(pk(&alice), gusd(), 5)],
            &[(pk(&alice), gbtc(), 5)],
        );
        unknown.outputs[0].asset = AssetRef::Ticker("gEUR".into());
        let iu = c.valid(&dex, &unknown);
        assert_eq!(code(&[ia, iu]), Err(ErrorCode::UnknownVtxoOrAsset));
    }

    #[test]
    fn a_mint_is_paid_out_names_its_asset_by_id_and_a_burn_needs_what_it_burns() {
        let c = ctx();
        let (alice, dex) = (Keys::generate(), Keys::generate());
        let (a, d) = (pk(&alice), pk(&dex));
        let lp = l2_asset_id(&d, "gLP");
        let supply = |asset: AssetId, n: u64| {
            Some(vec![SupplyChange {
                asset: AssetRef::Id(asset),
                ticker: "gLP".into(),
                amount: WireAmount::new(n),
            }])
        };
        let ia = c.valid(
            &alice,
            &c.leg(
                &alice,
                IntentType::AddLiquidity,
                &[(d, gbtc(), 100), (d, gusd(), 65)],
                &[(d, AssetRef::Id(lp), 80)],
            ),
        );
        let mut dc = c.leg(
            &dex,
            IntentType::AddLiquidity,
            &[(a, AssetRef::Id(lp), 80)],
            &[(a, gbtc(), 100), (a, gusd(), 65)],
        );
        dc.mint = supply(lp, 80);
        let id = c.valid(&dex, &dc);
        let s = c.check(&[ia.clone(), id]).expect("mint");
        assert_eq!(
            s.parties[1].draw,
            [(c.gbtc, 10)].into(),
            "the mint needs no LP input"
        );

        // Whether Alice may mint the DEX's asset is the relay's check (who
        // holds its control asset; engine test `arkade_lp`): the intent is
        // well-formed. A mint must name the asset by id, not by ticker.
        let mut forged = c.leg(
            &alice,
            IntentType::AddLiquidity,
            &[(d, gbtc(), 1)],
            &[(d, gusd(), 1)],
        );
        forged.mint = supply(lp, 5);
        let ev = builders::intent(&alice, &c.relay, &forged).expect("intent");
        assert!(validate_intent(&ev, &c.policy, UnixTime::now()).is_ok());
        if let Some(m) = forged.mint.as_mut() {
            m[0].asset = AssetRef::Ticker("gLP".into());
        }
        let ev = builders::intent(&alice, &c.relay, &forged).expect("intent");
        let r = validate_intent(&ev, &c.policy, UnixTime::now()).expect_err("by ticker");
        assert_eq!(r.code, ErrorCode::Malformed);
        assert!(r.message.contains("must be an asset id"), "{}", r.message);

        // A burn beyond what the issuer receives.
        let mut dc = c.leg(
            &dex,
            IntentType::AddLiquidity,
            &[(a, AssetRef::Id(lp), 80)],
            &[(a, gbtc(), 100), (a, gusd(), 65)],
        );
        dc.mint = supply(lp, 80);
        dc.burn = supply(lp, 1);
        let id = c.valid(&dex, &dc);
        let r = c.check(&[ia, id]).expect_err("burn");
        assert!(r.message.contains("burns 1 gLP"), "{}", r.message);
    }

    #[test]
    fn conservation() {
        let (x, y) = (AssetId::from_bytes([1; 32]), AssetId::from_bytes([2; 32]));
        assert!(check_conservation(&[(x, 10)], &[(x, 4), (x, 6)], &[], &[]).is_ok());
        assert!(check_conservation(&[], &[(y, 5)], &[(y, 5)], &[]).is_ok());
        assert!(check_conservation(&[(y, 5)], &[], &[], &[(y, 5)]).is_ok());
        let r = check_conservation(&[(x, 10)], &[(x, 11)], &[], &[]).expect_err("mint");
        assert_eq!(r.code, ErrorCode::BatchInconsistent);
    }
}
