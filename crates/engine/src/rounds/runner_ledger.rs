//! The ledger side of a finalized round ([`RoundRunner`]'s bookkeeping):
//! the relay's new VTXOs with their colour, and its spent inputs, in one
//! `L2Transaction` keyed by the commitment txid. A child of `runner.rs` so
//! it reads the runner's ports directly.

use ark_relay_ark::asset::IdMap;
use ark_relay_ceremony::round::{JobInput, Participation};
use ark_relay_core::backends::ark::VtxoQuery;
use ark_relay_core::{Colour, CommitOutcome, L2Transaction, NewVtxo, UnixTime, VtxoStatus};

use super::{participation_lock, RoundRunner, RoundsError};

impl RoundRunner {
    /// Puts the new VTXOs of the finalized relay-signed jobs that pay the
    /// relay in the ledger — with their colour: the asset of the job's input
    /// whose Arkade id the output carries — and spends their VTXO inputs
    /// (locked by the participation), in one `L2Transaction` keyed by the
    /// commitment txid.
    pub(super) async fn commit_ledger(
        &self,
        p: &Participation,
        commitment: bitcoin::Txid,
    ) -> Result<(), RoundsError> {
        let relay = self.relay_pubkey();
        let vtxo = self.server.default_vtxo(&relay);
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut boarded = Vec::new();
        let mut in_sats = 0u64;
        let created_ids: Vec<_> = p.created.iter().map(|c| c.vtxo).collect();
        let at_server = if created_ids.is_empty() {
            Vec::new()
        } else {
            self.ark
                .get_vtxos(&VtxoQuery::Outpoints(created_ids))
                .await
                .unwrap_or_default()
        };
        let colours = self.input_colours(p).await?;
        for e in p
            .entries
            .iter()
            .filter(|e| e.in_round() && e.job.relay_signed())
        {
            // Boarding makes VTXOs from on-chain coins: no ledger input.
            let boarding = e
                .job
                .inputs
                .iter()
                .all(|i| matches!(i, JobInput::Boarding { .. }));
            // A renewal keeps its input's status (inventory stays available).
            let mut status = None;
            for i in &e.job.inputs {
                if let JobInput::RelayVtxo { vtxo: id, .. } = i {
                    if let Some(v) = self.ledger.vtxo(id).await? {
                        inputs.push(*id);
                        in_sats = in_sats.saturating_add(v.sats.get());
                        status.get_or_insert(v.status);
                    }
                }
            }
            let status = match status {
                Some(VtxoStatus::Assigned) => VtxoStatus::Assigned,
                _ => VtxoStatus::Available,
            };
            for c in p.created.iter().filter(|c| c.job_id == e.job.job_id) {
                let Some(out) = e.job.outputs.get(c.output) else {
                    continue;
                };
                if out.owner != relay {
                    continue;
                }
                let at = at_server.iter().find(|v| v.id == c.vtxo);
                let colour = if out.assets.is_empty() {
                    None
                } else {
                    // The indexer's assets of the outpoint: outputs alike but
                    // for their assets (a control VTXO and its asset's genesis
                    // unit) may pay each other's job in the tree.
                    let carried = at.map(|v| v.assets.as_slice()).ok_or_else(|| {
                        RoundsError::Colour(format!("{} not at the indexer yet", c.vtxo))
                    })?;
                    match carried {
                        [a] => Some(Colour {
                            asset: colours.get(&a.asset_id).copied().ok_or_else(|| {
                                RoundsError::Colour(format!(
                                    "{}: no input carries asset {}",
                                    c.vtxo, a.asset_id
                                ))
                            })?,
                            amount: ark_relay_core::AssetAmount::new(a.amount),
                        }),
                        other => {
                            return Err(RoundsError::Colour(format!(
                                "{} carries {} assets",
                                c.vtxo,
                                other.len()
                            )))
                        }
                    }
                };
                let expires_at = at.map(|v| UnixTime(v.expires_at));
                let row = NewVtxo {
                    id: c.vtxo,
                    owner: relay,
                    sats: out.sats,
                    colour,
                    status,
                    tapscripts: vtxo.to_tapscripts(),
                    expires_at,
                };
                if boarding {
                    boarded.push(row);
                } else {
                    outputs.push(row);
                }
            }
        }
        let mut fresh = Vec::new();
        for row in boarded {
            if self.ledger.vtxo(&row.id).await?.is_none() {
                fresh.push(row);
            }
        }
        if !fresh.is_empty() {
            self.ledger.insert_vtxos(&fresh, self.clock.now()).await?;
            tracing::info!(%commitment, vtxos = fresh.len(), "boarded VTXOs recorded in the ledger");
        }
        if inputs.is_empty() {
            return Ok(());
        }
        // What the renewed VTXOs do not carry on went to arkd (its intent fee).
        let out_sats = outputs
            .iter()
            .fold(0u64, |a, o| a.saturating_add(o.sats.get()));
        let fee = ark_relay_core::Sats::new(in_sats.saturating_sub(out_sats));
        let outcome = self
            .ledger
            .commit_transaction(&L2Transaction {
                ark_txid: commitment,
                kind: "round".into(),
                session: Some(participation_lock(&p.id)),
                inputs,
                outputs,
                issued: Vec::new(),
                burned: Vec::new(),
                finalized_at: self.clock.now(),
                fee,
            })
            .await?;
        if outcome == CommitOutcome::Committed {
            tracing::info!(%commitment, "round outputs recorded in the ledger");
        }
        Ok(())
    }

    /// The ledger colours of the participation's relay VTXO inputs, by the
    /// Arkade id they travel under ([`IdMap::for_assets`]).
    async fn input_colours(
        &self,
        p: &Participation,
    ) -> Result<std::collections::BTreeMap<String, ark_relay_core::AssetId>, RoundsError> {
        let mut colours = std::collections::BTreeMap::new();
        let mut ids: Option<IdMap> = None;
        for e in p.entries.iter().filter(|e| e.in_round()) {
            for i in &e.job.inputs {
                let JobInput::RelayVtxo { vtxo, .. } = i else {
                    continue;
                };
                let Some(c) = self.ledger.vtxo(vtxo).await?.and_then(|v| v.colour) else {
                    continue;
                };
                if ids.is_none() {
                    let all = self.ledger.assets().await?;
                    ids = Some(IdMap::for_assets(all.iter().map(|a| &a.id)));
                }
                let id = ids.get_or_insert_with(IdMap::bridged).arkade(&c.asset);
                colours.insert(id.to_string(), c.asset);
            }
        }
        Ok(colours)
    }
}
