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

use ark_relay_ark::asset::{arkade_id, control_arkade_id};
use ark_relay_core::{AssetType, NewOutboxEvent, SessionId};
use ark_relay_protocol::names;
use ark_relay_protocol::request::{parse_request, ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, event_id_from_nostr, pubkey_from_nostr, Rejection};
use nostr::JsonUtil;

use super::issue::{GenesisRequest, IssueError, Issuer};
use super::{fatal, transient, Ceremony};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;

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
