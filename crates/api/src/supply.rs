//! What circulates of each registered asset (issue 20). The ledger's
//! `total_supply` is arkd's supply: every unit of colour on unspent VTXOs.
//! Two kinds of units in it are not money anyone was paid or lifted:
//! - the **genesis unit** of an asset issued on Ark (`Issuer::genesis`
//!   creates one unit for its issuer, e.g. 1 gBTC held by the relay, so that
//!   arkd registers the asset; no lift backs it). An asset has had a genesis
//!   on Ark when its control asset is registered;
//! - a **control asset** (`gBTC.control`): it proves the right to issue.
//!
//! `/assets` shows both figures; `/reserves` compares the circulating one with
//! the BTC reserve.

use std::collections::{BTreeMap, BTreeSet};

use ark_relay_ark::asset::{control_ledger_id, GENESIS_UNITS};
use ark_relay_core::{Asset, AssetId};

/// One asset's supply, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Supply {
    /// Units in circulation: `total_supply` less the genesis unit; 0 for a
    /// control asset.
    pub circulating: u64,
    /// For a control asset: the asset whose issuance it controls.
    pub control_of: Option<AssetId>,
    /// Whether the asset was issued on Ark by a genesis (its control asset
    /// is registered).
    pub issued_on_ark: bool,
}

/// Every asset of `assets` (the registered ones) by id, with its supply split.
pub(crate) fn supplies(assets: &[Asset]) -> BTreeMap<AssetId, Supply> {
    let registered: BTreeSet<AssetId> = assets.iter().map(|a| a.id).collect();
    let controls: BTreeMap<AssetId, AssetId> = assets
        .iter()
        .map(|a| (control_ledger_id(&a.id), a.id))
        .filter(|(control, _)| registered.contains(control))
        .collect();
    assets
        .iter()
        .map(|a| {
            let control_of = controls.get(&a.id).copied();
            let issued_on_ark = controls.values().any(|issued| *issued == a.id);
            let total = a.total_supply.get();
            let circulating = if control_of.is_some() {
                0
            } else if issued_on_ark {
                total.saturating_sub(GENESIS_UNITS)
            } else {
                total
            };
            (
                a.id,
                Supply {
                    circulating,
                    control_of,
                    issued_on_ark,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relay_core::{AssetAmount, AssetType, UnixTime};

    fn asset(id: AssetId, ticker: &str, supply: u64) -> Asset {
        Asset {
            id,
            name: ticker.into(),
            ticker: ticker.into(),
            asset_type: AssetType::RelayIssued,
            decimals: 0,
            total_supply: AssetAmount::new(supply),
            reserve_amount: ark_relay_core::Sats::new(0),
            enabled: true,
            created_at: UnixTime(0),
        }
    }

    #[test]
    fn the_genesis_unit_and_the_control_asset_do_not_circulate() {
        let gbtc = AssetId::from_bytes([1; 32]);
        let bridged = AssetId::from_bytes([2; 32]);
        let control = control_ledger_id(&gbtc);
        let s = supplies(&[
            asset(gbtc, "gBTC", 751),
            asset(control, "gBTC.control", 1),
            asset(bridged, "gUSD", 40),
        ]);
        assert_eq!(s[&gbtc].circulating, 750, "751 less the genesis unit");
        assert_eq!(s[&gbtc].control_of, None);
        assert_eq!(s[&control].circulating, 0);
        assert_eq!(s[&control].control_of, Some(gbtc));
        assert_eq!(s[&bridged].circulating, 40, "no genesis on Ark: all of it");
    }
}
