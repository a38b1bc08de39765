//! Seeding VTXOs for end-to-end tests: each one is funded at the arkd
//! simulator **and** recorded in the ledger with the same sats, script and
//! colour, so that arkd's indexer and the ledger agree from the first VTXO
//! (what `ark-relay reconcile` checks, and what the simulator's strict asset
//! rules and a wallet's indexer check need). Colour is seeded at arkd with
//! [`ArkdSim::fund_with_assets`] under the asset's Arkade id
//! ([`arkade_id`]): as if a packet had put it there.

use ark_relay_ark::asset::arkade_id;
use ark_relay_core::{Colour, NewVtxo, PubKey, RelayStore, Sats, UnixTime, VtxoId, VtxoStatus};
use ark_relay_sim::arkd::ArkdSim;

/// One VTXO to seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    /// Its owner (the VTXO pays the owner's default script).
    pub owner: PubKey,
    /// Its carrier sats.
    pub sats: u64,
    /// The asset it holds, at arkd and in the ledger.
    pub colour: Option<Colour>,
    /// Its ledger status.
    pub status: VtxoStatus,
}

impl Seed {
    /// A user's VTXO (`Assigned`), holding `colour`.
    pub fn user(owner: PubKey, sats: u64, colour: Option<Colour>) -> Self {
        Self {
            owner,
            sats,
            colour,
            status: VtxoStatus::Assigned,
        }
    }

    /// An uncoloured inventory VTXO of the relay (`Available`).
    pub fn inventory(relay: PubKey, sats: u64) -> Self {
        Self {
            owner: relay,
            sats,
            colour: None,
            status: VtxoStatus::Available,
        }
    }
}

/// Funds every seed at `sim` and records them all in `store` in one insert;
/// returns their ids in order.
pub async fn seed_vtxos(store: &dyn RelayStore, sim: &ArkdSim, seeds: &[Seed]) -> Vec<VtxoId> {
    let server = sim.server_info();
    let vtxos: Vec<NewVtxo> = seeds
        .iter()
        .map(|s| {
            let assets = s
                .colour
                .map(|c| (arkade_id(&c.asset), c.amount.get()))
                .into_iter()
                .collect();
            let v = sim.fund_with_assets(&s.owner, Sats::new(s.sats), assets);
            NewVtxo {
                id: v.outpoint.into(),
                owner: s.owner,
                sats: Sats::new(v.amount),
                colour: s.colour,
                status: s.status,
                tapscripts: server.default_vtxo(&s.owner).to_tapscripts(),
                expires_at: Some(UnixTime(v.expires_at)),
            }
        })
        .collect();
    store
        .insert_vtxos(&vtxos, UnixTime::now())
        .await
        .expect("seeding VTXOs in the ledger");
    vtxos.iter().map(|v| v.id).collect()
}

/// One seed; its id.
pub async fn seed_vtxo(store: &dyn RelayStore, sim: &ArkdSim, seed: Seed) -> VtxoId {
    seed_vtxos(store, sim, &[seed]).await[0]
}

/// `n` inventory VTXOs of `sats` for `relay`.
pub async fn seed_inventory(
    store: &dyn RelayStore,
    sim: &ArkdSim,
    relay: PubKey,
    n: usize,
    sats: u64,
) -> Vec<VtxoId> {
    seed_vtxos(store, sim, &vec![Seed::inventory(relay, sats); n]).await
}

/// `Some` colour of `amount` units of `asset`.
pub fn coloured(asset: ark_relay_core::AssetId, amount: u64) -> Option<Colour> {
    Some(Colour {
        asset,
        amount: ark_relay_core::AssetAmount::new(amount),
    })
}
