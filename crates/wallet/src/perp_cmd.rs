//! `ark-wallet perp …`: perpetual positions with a perps DEX bot (PRD §12
//! scenario 7). The wallet shows the position's terms — the liquidation price
//! first of all — before it signs anything, and after opening checks that
//! the position token's script is exactly the one those terms imply
//! (`ark_relay_wallet::verify::perps`).

use std::io::BufRead;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use ark_relay_core::{EventId, PubKey};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType};
use ark_relay_protocol::event_id_from_nostr;
use ark_relay_protocol::perps::{PerpTerms, Side};
use ark_relay_wallet::dex::RpcClient;
use ark_relay_wallet::verify::perps::{check_position_vtxo, PositionView};
use ark_relay_wallet::Wallet;
use clap::Subcommand;
use nostr::Keys;

/// `perp` subcommands.
#[derive(Debug, Subcommand)]
pub enum PerpCommand {
    /// Without a position: list my positions at the DEX; with `--pair`: ask
    /// for a quote and show its terms (nothing is signed).
    Show {
        /// The pair to quote (with `--side`, `--leverage`, `--margin`).
        #[arg(long, requires_all = ["side", "leverage", "margin"])]
        pair: Option<String>,
        /// `long` or `short`.
        #[arg(long, value_parser = parse_side)]
        side: Option<Side>,
        /// Leverage (integer).
        #[arg(long)]
        leverage: Option<u32>,
        /// Margin in gBTC base units.
        #[arg(long)]
        margin: Option<u64>,
    },
    /// Ask for a quote, show the terms, and (after `y` or with `--yes`) sign
    /// the `open_perp` and have the DEX settle it.
    Open {
        #[command(flatten)]
        position: PositionArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Close a position: return its token for its equity at the DEX's mark.
    Close {
        /// The position (its `open_perp` id).
        position: EventId,
        /// The payout to ask for (default: the equity the DEX shows).
        #[arg(long)]
        payout: Option<u64>,
    },
}

/// What position to quote.
#[derive(Debug, Clone, clap::Args)]
pub struct PositionArgs {
    /// The pair (`BTC/USD`).
    #[arg(long)]
    pair: String,
    /// `long` or `short`.
    #[arg(long, value_parser = parse_side)]
    side: Side,
    /// Leverage (integer).
    #[arg(long)]
    leverage: u32,
    /// Margin in gBTC base units.
    #[arg(long)]
    margin: u64,
}

fn parse_side(s: &str) -> Result<Side, String> {
    match s {
        "long" => Ok(Side::Long),
        "short" => Ok(Side::Short),
        _ => Err(format!("{s:?}: expected long or short")),
    }
}

async fn ask(client: &RpcClient, req: serde_json::Value, t: Duration) -> Result<serde_json::Value> {
    client
        .request(&req, t)
        .await
        .map_err(|e| anyhow!("DEX: {e}"))
}

async fn quote(
    client: &RpcClient,
    p: &PositionArgs,
    t: Duration,
) -> Result<(PerpTerms, PositionView)> {
    let q = ask(
        client,
        serde_json::json!({"action": "quote", "pair": p.pair, "side": p.side,
            "leverage": p.leverage, "margin": p.margin}),
        t,
    )
    .await?;
    let terms: PerpTerms = serde_json::from_value(q["terms"].clone())?;
    let view =
        PositionView::new(&terms).map_err(|e| anyhow!("the DEX quoted invalid terms: {e}"))?;
    if (p.side, p.leverage, p.margin, p.pair.as_str())
        != (
            view.terms.side,
            view.terms.leverage,
            view.terms.margin,
            view.terms.pair.as_str(),
        )
    {
        bail!("the DEX quoted other terms than asked");
    }
    Ok((terms, view))
}

/// Runs `perp …` for `wallet` (key `keys`) against the DEX `dex`.
pub async fn run(
    cmd: &PerpCommand,
    wallet: &Wallet,
    keys: Keys,
    dex: PubKey,
    relays: Vec<String>,
    timeout: Duration,
    json: bool,
) -> Result<()> {
    let client = RpcClient::connect(keys, dex, relays)
        .await
        .map_err(|e| anyhow!(e))?;
    let result = perp(cmd, wallet, &client, dex, timeout, json).await;
    client.shutdown().await;
    result
}

async fn perp(
    cmd: &PerpCommand,
    wallet: &Wallet,
    client: &RpcClient,
    dex: PubKey,
    t: Duration,
    json: bool,
) -> Result<()> {
    match cmd {
        PerpCommand::Show {
            pair: Some(pair),
            side: Some(side),
            leverage: Some(leverage),
            margin: Some(margin),
        } => {
            let args = PositionArgs {
                pair: pair.clone(),
                side: *side,
                leverage: *leverage,
                margin: *margin,
            };
            let (terms, view) = quote(client, &args, t).await?;
            if json {
                out!("{}", serde_json::to_string_pretty(&terms)?);
            } else {
                view.lines().iter().for_each(|l| out!("{l}"));
            }
        }
        PerpCommand::Show { .. } => {
            let p = ask(client, serde_json::json!({"action": "positions"}), t).await?;
            out!("{}", serde_json::to_string_pretty(&p["positions"])?);
        }
        PerpCommand::Open { position, yes } => {
            let (terms, view) = quote(client, position, t).await?;
            view.lines().iter().for_each(|l| out!("{l}"));
            if !yes {
                eprint!("sign this open_perp? [y/N] ");
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if line.trim() != "y" {
                    bail!("not signed");
                }
            }
            let mut c = IntentContent::batch_leg(
                IntentType::OpenPerp,
                format!("perp-{}", uuid::Uuid::new_v4().simple()),
                &[(dex, terms.margin_deposit.asset.clone(), view.terms.margin)],
                &[(dex, terms.position_token.clone(), 1)],
                &wallet.relay(),
                wallet.params().await?.transfer_fee,
                wallet.intent_expiry(),
            );
            c.perp = Some(terms.clone());
            let intent = wallet.sign_batch_intent(&c).await?;
            let id = event_id_from_nostr(&intent.id);
            let done = ask(
                client,
                serde_json::json!({"action": "open", "intent": intent}),
                t,
            )
            .await?;
            // The token VTXO must carry exactly the script the terms imply.
            let params = wallet.params().await?;
            let AssetRef::Id(token) = view.terms.position_token else {
                bail!("position_token is not an asset id");
            };
            let vtxos = wallet.sync().await?;
            let held = vtxos
                .iter()
                .find(|v| v.asset_id == Some(token))
                .ok_or_else(|| anyhow!("no position token VTXO after opening"))?;
            check_position_vtxo(
                held,
                &wallet.pubkey(),
                &view.terms,
                &wallet.relay(),
                &params.server,
                id,
            )
            .map_err(|e| anyhow!(e))?;
            out!("opened position {id}: {done}");
            out!("position token VTXO {} checked: default leaves + the conditional leaf of these terms", held.vtxo);
        }
        PerpCommand::Close { position, payout } => {
            let list = ask(client, serde_json::json!({"action": "positions"}), t).await?;
            let entry = list["positions"]
                .as_array()
                .and_then(|v| {
                    v.iter()
                        .find(|p| p["position"].as_str() == Some(&position.to_string()))
                })
                .ok_or_else(|| anyhow!("the DEX knows no position {position} of mine"))?;
            let token: AssetRef = entry["position_token"]
                .as_str()
                .ok_or_else(|| anyhow!("the DEX did not say the position token"))?
                .parse()
                .map_err(|e: String| anyhow!(e))?;
            let margin_asset: AssetRef = entry["margin_asset"]
                .as_str()
                .unwrap_or("gBTC")
                .parse()
                .map_err(|e: String| anyhow!(e))?;
            let payout = match payout {
                Some(p) => *p,
                None => entry["mark"]["equity"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow!("no equity to close at: pass --payout"))?,
            };
            let c = IntentContent::batch_leg(
                IntentType::AtomicSwap,
                format!("close-{}", uuid::Uuid::new_v4().simple()),
                &[(dex, token, 1)],
                &[(dex, margin_asset, payout)],
                &wallet.relay(),
                wallet.params().await?.transfer_fee,
                wallet.intent_expiry(),
            );
            let intent = wallet.sign_batch_intent(&c).await?;
            let done = ask(
                client,
                serde_json::json!({"action": "close", "position": position, "intent": intent}),
                t,
            )
            .await?;
            out!("closed position {position} for {payout}: {done}");
        }
    }
    Ok(())
}
