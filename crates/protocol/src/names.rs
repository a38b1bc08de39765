//! Asset names (docs/protocol.md "Asset names"): a ticker names at most one
//! asset, the relay's own tickers (gBTC and any ticker of an asset the relay
//! issues) can never be taken by another issuer, and an id always works.
//!
//! Pure rules over the registered assets; the engine applies them when it
//! resolves an intent's `asset` fields and before it registers an asset minted
//! in a batch (an LP token).

use ark_relay_core::{Asset, AssetId, AssetType, ErrorCode};

use crate::content::{AssetRef, GBTC_TICKER};
use crate::Rejection;

/// Whether `ticker` is reserved for the relay: `gBTC`, or the ticker of an
/// asset the relay issues. Tickers compare case-sensitively, as on the wire.
pub fn is_reserved(assets: &[Asset], ticker: &str) -> bool {
    ticker == GBTC_TICKER
        || assets
            .iter()
            .any(|a| a.asset_type == AssetType::RelayIssued && a.ticker == ticker)
}

/// The one enabled asset `asset` names. A reserved ticker resolves only to
/// the relay's own asset (another issuer's asset with that ticker is never
/// chosen); any other ticker must name exactly one enabled asset, otherwise
/// 2003 says to name it by id.
pub fn resolve(assets: &[Asset], asset: &AssetRef) -> Result<AssetId, Rejection> {
    let unknown = || {
        Rejection::new(
            ErrorCode::UnknownVtxoOrAsset,
            format!("unknown asset {asset}"),
        )
    };
    match asset {
        AssetRef::Id(id) => assets
            .iter()
            .find(|a| &a.id == id && a.enabled)
            .map(|a| a.id)
            .ok_or_else(unknown),
        AssetRef::Ticker(t) => {
            let reserved = is_reserved(assets, t);
            let named: Vec<&Asset> = assets
                .iter()
                .filter(|a| &a.ticker == t && a.enabled)
                .filter(|a| !reserved || a.asset_type == AssetType::RelayIssued)
                .collect();
            match named.as_slice() {
                [one] => Ok(one.id),
                [] => Err(unknown()),
                _ => Err(Rejection::new(
                    ErrorCode::UnknownVtxoOrAsset,
                    format!("ticker {t} names several assets: name it by asset id"),
                )),
            }
        }
    }
}

/// Whether a new asset minted by another issuer may take `ticker`: not a
/// reserved ticker and not the ticker of any registered asset (3001).
pub fn check_new_ticker(assets: &[Asset], ticker: &str) -> Result<(), Rejection> {
    if is_reserved(assets, ticker) {
        return Err(Rejection::new(
            ErrorCode::BatchInconsistent,
            format!("ticker {ticker} is reserved for the relay's own asset"),
        ));
    }
    if assets.iter().any(|a| a.ticker == ticker) {
        return Err(Rejection::new(
            ErrorCode::BatchInconsistent,
            format!("ticker {ticker} already names an asset"),
        ));
    }
    Ok(())
}

/// Whether `asset` names gBTC: its ticker, or the id of the relay-issued
/// asset whose ticker is gBTC (a fee may name gBTC either way).
pub fn is_gbtc(assets: &[Asset], asset: &AssetRef) -> bool {
    match asset {
        AssetRef::Ticker(t) => t == GBTC_TICKER,
        AssetRef::Id(id) => assets.iter().any(|a| {
            &a.id == id && a.ticker == GBTC_TICKER && a.asset_type == AssetType::RelayIssued
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relay_core::{AssetAmount, Sats, UnixTime};

    fn asset(b: u8, ticker: &str, asset_type: AssetType) -> Asset {
        Asset {
            id: AssetId::from_bytes([b; 32]),
            name: ticker.to_owned(),
            ticker: ticker.to_owned(),
            asset_type,
            decimals: 0,
            total_supply: AssetAmount::new(0),
            reserve_amount: Sats::ZERO,
            enabled: true,
            created_at: UnixTime(0),
        }
    }

    #[test]
    fn a_squatted_gbtc_ticker_never_resolves_to_the_squatter() {
        // The squatter's asset sorts first by id, as in the reported sequence.
        let fake = asset(0x01, "gBTC", AssetType::Permissionless);
        let real = asset(0x47, "gBTC", AssetType::RelayIssued);
        let all = vec![fake.clone(), real.clone()];
        assert_eq!(resolve(&all, &AssetRef::gbtc()), Ok(real.id));
        // By id, each is itself.
        assert_eq!(resolve(&all, &AssetRef::Id(fake.id)), Ok(fake.id));
        // A new mint cannot take gBTC, nor a taken ticker.
        let r = check_new_ticker(&all, "gBTC").unwrap_err();
        assert_eq!(r.code, ErrorCode::BatchInconsistent);
        let lp = asset(0x10, "LP1", AssetType::Permissionless);
        let all = vec![real.clone(), lp];
        assert!(check_new_ticker(&all, "LP1").is_err());
        assert!(check_new_ticker(&all, "LP2").is_ok());
    }

    #[test]
    fn an_ambiguous_ticker_asks_for_the_id() {
        let a = asset(0x10, "TOK", AssetType::Permissionless);
        let b = asset(0x11, "TOK", AssetType::Permissionless);
        let r = resolve(&[a, b], &AssetRef::Ticker("TOK".into())).unwrap_err();
        assert_eq!(r.code, ErrorCode::UnknownVtxoOrAsset);
        assert!(r.message.contains("by asset id"), "{}", r.message);
    }

    #[test]
    fn the_fee_may_name_gbtc_by_id() {
        let fake = asset(0x01, "gBTC", AssetType::Permissionless);
        let real = asset(0x47, "gBTC", AssetType::RelayIssued);
        let all = vec![fake.clone(), real.clone()];
        assert!(is_gbtc(&all, &AssetRef::Id(real.id)));
        assert!(is_gbtc(&all, &AssetRef::gbtc()));
        assert!(!is_gbtc(&all, &AssetRef::Id(fake.id)));
    }
}
