//! `issue_asset` (docs/protocol.md, "Assets issued by a wallet"): a wallet —
//! a DEX for its LP token — has a new asset issued on Ark with itself as the
//! issuer. The genesis is [`Issuer::genesis_for`], the same relay-signed
//! transaction that issues gBTC and lifted Taproot Assets, with its two
//! outputs (1 unit of the asset, its control asset) paid to the requester.
//! From then on the asset's id (the genesis txid; Arkade id: txid, group 0)
//! names it in intents, and only the holder of the control VTXO may `mint`
//! it: each mint spends and re-creates that VTXO, so arkd accepts the
//! reissuance (`ceremony::batch`).
//!
//! The genesis runs under a lock derived from the request's event id, so a
//! redelivered request resumes (or answers again) the same genesis.
//!
//! The requester signs nothing and pays nothing: the two outputs' carrier
//! sats come from the relay's inventory. So that nobody can drain the
//! inventory by asking again and again (keys are free), `issue_asset` has a
//! budget ([`IssueBudget`], `[inventory] issue_asset_per_key` and
//! `issue_asset_per_hour`): beyond it the request is refused with 9001 and
//! nothing is issued.

use ark_relay_ark::asset::{arkade_id, control_arkade_id, control_ledger_id};
use ark_relay_core::{AssetId, AssetType, ErrorCode, NewOutboxEvent, SessionId, UnixTime};
use ark_relay_protocol::names;
use ark_relay_protocol::request::{parse_request, ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, event_id_from_nostr, pubkey_from_nostr, Rejection};
use nostr::JsonUtil;

use super::issue::{GenesisRequest, IssueError, Issuer};
use super::{fatal, transient, Ceremony};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;

/// How many assets the relay issues for wallets (`issue_asset`), whose
/// carrier sats it pays. `0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueBudget {
    /// Assets whose control asset one key may hold at a time.
    pub per_key: u32,
    /// New assets (of any kind) the relay registers per hour, after which
    /// `issue_asset` waits.
    pub per_hour: u32,
}

impl Default for IssueBudget {
    fn default() -> Self {
        Self {
            per_key: 8,
            per_hour: 60,
        }
    }
}

impl IssueBudget {
    /// Whether one more `issue_asset` fits for a key whose VTXOs hold the
    /// assets `held`, given the assets `registered` so far (id, registration
    /// time) at `now`.
    pub fn check(
        &self,
        held: &[AssetId],
        registered: &[(AssetId, UnixTime)],
        now: UnixTime,
    ) -> Result<(), Rejection> {
        // A genesis registers its asset and its control asset: count assets.
        let controls: std::collections::BTreeSet<_> = registered
            .iter()
            .map(|(id, _)| control_ledger_id(id))
            .collect();
        if self.per_key > 0 {
            let by_key = held.iter().filter(|a| controls.contains(a)).count();
            if by_key >= self.per_key as usize {
                return Err(Rejection::new(
                    ErrorCode::RateLimited,
                    format!(
                        "this key already holds the control of {by_key} assets (limit {})",
                        self.per_key
                    ),
                ));
            }
        }
        if self.per_hour > 0 {
            let since = now.0.saturating_sub(3600);
            let recent = registered
                .iter()
                .filter(|(id, at)| at.0 > since && !controls.contains(id))
                .count();
            if recent >= self.per_hour as usize {
                return Err(Rejection::new(
                    ErrorCode::RateLimited,
                    format!(
                        "the relay issued {recent} assets in the last hour (limit {}); try later",
                        self.per_hour
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `ticker` is a ticker (the rule of `mint` entries).
fn is_ticker(ticker: &str) -> bool {
    (1..=20).contains(&ticker.len())
        && ticker
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Ceremony {
    /// Handles an `issue_asset` request (job keyed by its event id).
    #[tracing::instrument(skip_all, fields(request = %inbound.event.id))]
    pub(crate) async fn on_issue_asset(
        &self,
        inbound: &InboundJob,
    ) -> Result<JobOutcome, HandlerError> {
        let request = event_id_from_nostr(&inbound.event.id);
        let author = pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author"))?;
        let scheme = inbound.answer_scheme();
        let answer = |response: &ServiceResponse| -> Result<JobOutcome, HandlerError> {
            let ev =
                builders::service_response(&self.runner.keys, &author, &request, response, scheme)
                    .map_err(fatal)?;
            Ok(JobOutcome {
                outbox: vec![NewOutboxEvent {
                    dedupe_key: format!("31501:{request}"),
                    kind: ev.kind.as_u16(),
                    recipient: Some(author),
                    event_json: ev.as_json(),
                }],
            })
        };
        let refuse = |r: Rejection| {
            tracing::info!(code = r.code.code(), reason = %r.message, "issue_asset refused");
            answer(&ServiceResponse::err(request.to_string(), &r))
        };
        let plain = inbound
            .plaintext
            .as_deref()
            .ok_or_else(|| fatal("request without plaintext"))?;
        let (ticker, name, decimals) = match parse_request(plain) {
            Ok(ServiceRequest::IssueAsset {
                ticker,
                name,
                decimals,
            }) => (ticker, name, decimals.unwrap_or(0)),
            Ok(_) => return Err(fatal("not an issue_asset")),
            Err(r) => return refuse(r),
        };
        if !is_ticker(&ticker) {
            return refuse(Rejection::new(
                ark_relay_core::ErrorCode::Malformed,
                "ticker must be 1-20 of A-Z a-z 0-9 - _",
            ));
        }
        let store = &self.runner.store;
        let issuer = Issuer::new(
            store.clone(),
            self.runner.ark.clone(),
            self.runner.keypair,
            self.runner.clock.clone(),
        );
        let lock = SessionId::from(request);
        if !issuer.started(&lock).await.map_err(HandlerError::from)? {
            // A ticker names at most one asset; gBTC only the relay's.
            let assets = store.assets().await.map_err(transient)?;
            if let Err(r) = names::check_new_ticker(&assets, &ticker) {
                return refuse(r);
            }
            let held: Vec<AssetId> = (store.unspent_vtxos(&author).await)
                .map_err(transient)?
                .iter()
                .filter_map(|v| v.colour.map(|c| c.asset))
                .collect();
            let registered: Vec<_> = assets.iter().map(|a| (a.id, a.created_at)).collect();
            let now = self.runner.clock.now();
            if let Err(r) = self.issue_budget.check(&held, &registered, now) {
                return refuse(r);
            }
        }
        let genesis = GenesisRequest {
            name: name.unwrap_or_else(|| ticker.clone()),
            ticker,
            decimals,
            taproot_asset_id: None,
            asset_type: AssetType::Permissionless,
        };
        let g = match issuer.genesis_for(&lock, &genesis, author).await {
            Ok(g) => g,
            Err(IssueError::Rejected(r)) => return refuse(r),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(asset = %g.asset, issuer = %author, "asset issued on Ark for its requester");
        answer(&ServiceResponse::ok(
            request.to_string(),
            serde_json::json!({
                "asset_id": g.asset,
                "arkade_asset_id": arkade_id(&g.asset).to_string(),
                "control_asset_id": g.control,
                "control_arkade_asset_id": control_arkade_id(&g.asset).to_string(),
                "ark_txid": g.ark_txid.to_string(),
                "ticker": genesis.ticker,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> AssetId {
        AssetId::from_bytes([n; 32])
    }

    #[test]
    fn a_key_holding_the_limit_of_controls_is_refused_9001() {
        let b = IssueBudget {
            per_key: 2,
            per_hour: 0,
        };
        let registered = [
            (id(1), UnixTime(0)),
            (id(2), UnixTime(0)),
            (id(3), UnixTime(0)),
        ];
        let now = UnixTime(10_000);
        // Holding one control and an asset that is not a control: fits.
        let held = [control_ledger_id(&id(1)), id(2)];
        assert!(b.check(&held, &registered, now).is_ok());
        let held = [control_ledger_id(&id(1)), control_ledger_id(&id(3))];
        let r = b.check(&held, &registered, now).expect_err("at the limit");
        assert_eq!(r.code, ErrorCode::RateLimited);
        assert!(r.message.contains("limit 2"), "{}", r.message);
        // No limit.
        let off = IssueBudget {
            per_key: 0,
            per_hour: 0,
        };
        assert!(off.check(&held, &registered, now).is_ok());
    }

    #[test]
    fn the_hourly_budget_counts_only_the_last_hour() {
        let b = IssueBudget {
            per_key: 0,
            per_hour: 2,
        };
        let now = UnixTime(100_000);
        let old = [
            (id(1), UnixTime(now.0 - 3600)),
            (id(2), UnixTime(now.0 - 3601)),
        ];
        assert!(b.check(&[], &old, now).is_ok());
        let fresh = [
            (id(1), UnixTime(now.0 - 10)),
            (id(2), UnixTime(now.0 - 3599)),
        ];
        let r = b.check(&[], &fresh, now).expect_err("two this hour");
        assert_eq!(r.code, ErrorCode::RateLimited);
    }
}
