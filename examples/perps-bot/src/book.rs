//! The perpetuals book: open positions, the latest mark per pair, and what
//! to do when a price arrives. A pure state machine — `step(book, input) ->
//! effects` — with no I/O; the bot ([`crate::Perps`]) runs it and carries
//! out the effects (publishing a liquidation, logging a mark).
//!
//! Mark-to-market, in the margin asset's base units (a linear contract):
//! notional `N = margin × leverage`, `pnl = N × (price − entry) / entry`
//! (negated for a short), equity `margin + pnl`, maintenance `N × mm / 10 000`.
//! Equity reaches the maintenance exactly at the liquidation price of the
//! signed terms; the book liquidates on
//! [`ValidTerms::is_liquidatable`](ark_relay_protocol::perps::ValidTerms::is_liquidatable)
//! — the same integer rule the relay's checklist applies — never on its own
//! arithmetic, so the bot never sends a liquidation the relay would refuse
//! as "not beyond the threshold".

use std::collections::BTreeMap;

use ark_relay_core::{EventId, PubKey, UnixTime, VtxoId};
use ark_relay_protocol::perps::{Side, ValidPrice, ValidTerms, BPS};

/// Where a position is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Open and marked on every price.
    Open,
    /// A liquidation with this price event is on its way to the relay.
    Liquidating {
        /// The 30420 event in the witness.
        price_event: EventId,
    },
    /// Liquidated in this Ark transaction.
    Liquidated {
        /// The `liquidate` intent.
        intent: EventId,
        /// The settling ark txid.
        ark_txid: String,
    },
    /// The user is closing it (her batch is on its way).
    Closing,
    /// Closed by its owner.
    Closed,
}

/// A position's mark at one price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The price (the oracle's decimals).
    pub price: u64,
    /// Profit or loss in margin units (negative: loss).
    pub pnl: i128,
    /// Margin + pnl.
    pub equity: i128,
    /// The maintenance margin in margin units.
    pub maintenance: u128,
}

/// The mark of `terms` at `price`.
pub fn mark(terms: &ValidTerms, price: u64) -> Mark {
    let notional = u128::from(terms.margin) * u128::from(terms.leverage);
    let entry = i128::from(terms.entry_price.max(1));
    let moved = i128::from(price) - i128::from(terms.entry_price);
    let signed = match terms.side {
        Side::Long => moved,
        Side::Short => -moved,
    };
    // |N × moved| < 2^64 · 2^7 · 2^64: fits an i128 for realistic amounts;
    // saturate rather than wrap for absurd ones.
    let pnl = i128::try_from(notional)
        .ok()
        .and_then(|n| n.checked_mul(signed))
        .map(|x| x.div_euclid(entry))
        .unwrap_or(if signed < 0 {
            i128::MIN / 2
        } else {
            i128::MAX / 2
        });
    Mark {
        price,
        pnl,
        equity: i128::from(terms.margin).saturating_add(pnl),
        maintenance: notional * u128::from(terms.maintenance_margin_bps) / u128::from(BPS),
    }
}

/// One position.
#[derive(Debug, Clone)]
pub struct Position {
    /// The id of the user's signed `open_perp` (the position's id).
    pub id: EventId,
    /// Its owner.
    pub user: PubKey,
    /// The signed terms.
    pub terms: ValidTerms,
    /// The position token's ticker (an Arkade asset the DEX issued; its id is the genesis txid).
    pub ticker: String,
    /// The signed `open_perp` event itself (the witness needs it).
    pub open_perp: nostr::Event,
    /// The VTXO holding the position token, once known.
    pub token_vtxo: Option<VtxoId>,
    /// Its status.
    pub status: Status,
    /// The last mark.
    pub last_mark: Option<Mark>,
}

/// The book's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookRules {
    /// The oracle whose prices count (events by other keys are ignored).
    pub oracle: PubKey,
    /// Prices older than this (seconds, by their `timestamp`) are ignored.
    pub max_price_age: i64,
}

/// Positions and marks.
#[derive(Debug, Clone)]
pub struct Book {
    rules: BookRules,
    positions: BTreeMap<EventId, Position>,
    /// The latest accepted price per pair, with its signed event.
    marks: BTreeMap<String, (ValidPrice, nostr::Event)>,
}

/// What happens to the book.
#[derive(Debug, Clone)]
pub enum Input {
    /// A batch settled a new position.
    Opened(Box<Position>),
    /// A price event arrived (already parsed; the raw event kept for the witness).
    Price {
        /// The parsed price.
        price: ValidPrice,
        /// The signed event.
        event: Box<nostr::Event>,
        /// Now.
        now: UnixTime,
    },
    /// The relay settled the liquidation of `id`.
    Liquidated {
        /// The position.
        id: EventId,
        /// The `liquidate` intent.
        intent: EventId,
        /// The ark txid.
        ark_txid: String,
    },
    /// The relay refused the liquidation of `id` (the position stays open
    /// and is retried on a later price).
    LiquidationRefused {
        /// The position.
        id: EventId,
        /// The relay's code.
        code: Option<u16>,
    },
    /// The owner started closing `id`.
    Closing {
        /// The position.
        id: EventId,
    },
    /// The owner's close settled (`true`) or failed (`false`).
    CloseDone {
        /// The position.
        id: EventId,
        /// Whether it settled.
        settled: bool,
    },
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Publish a liquidation of `id` with this price event as witness.
    Liquidate {
        /// The position.
        id: EventId,
        /// The price event for the witness.
        price_event: Box<nostr::Event>,
    },
    /// A position was marked (for the logs and the tests).
    Marked {
        /// The position.
        id: EventId,
        /// The mark.
        mark: Mark,
    },
    /// A price was ignored, and why.
    Ignored {
        /// The price event.
        event: EventId,
        /// Why.
        reason: &'static str,
    },
}

impl Book {
    /// An empty book.
    pub fn new(rules: BookRules) -> Self {
        Self {
            rules,
            positions: BTreeMap::new(),
            marks: BTreeMap::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> BookRules {
        self.rules
    }

    /// A position.
    pub fn position(&self, id: &EventId) -> Option<&Position> {
        self.positions.get(id)
    }

    /// Every position.
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.positions.values()
    }

    /// The latest accepted price of `pair`.
    pub fn mark_price(&self, pair: &str) -> Option<&ValidPrice> {
        self.marks.get(pair).map(|(p, _)| p)
    }

    /// Applies `input`; returns what to do.
    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Opened(p) => {
                let mut effects = vec![];
                let id = p.id;
                self.positions.insert(id, *p);
                // A price may already be beyond the new position's threshold.
                if let Some(price) = self
                    .positions
                    .get(&id)
                    .and_then(|p| self.marks.get(&p.terms.pair))
                    .cloned()
                {
                    effects.extend(self.mark_one(&id, &price.0, &price.1));
                }
                effects
            }
            Input::Price { price, event, now } => self.on_price(price, event, now),
            Input::Liquidated {
                id,
                intent,
                ark_txid,
            } => {
                self.set(&id, Status::Liquidated { intent, ark_txid });
                vec![]
            }
            Input::LiquidationRefused { id, code } => {
                tracing::warn!(position = %id, ?code, "liquidation refused");
                if matches!(self.status(&id), Some(Status::Liquidating { .. })) {
                    self.set(&id, Status::Open);
                }
                vec![]
            }
            Input::Closing { id } => {
                self.set(&id, Status::Closing);
                vec![]
            }
            Input::CloseDone { id, settled } => {
                self.set(
                    &id,
                    if settled {
                        Status::Closed
                    } else {
                        Status::Open
                    },
                );
                vec![]
            }
        }
    }

    fn status(&self, id: &EventId) -> Option<&Status> {
        self.positions.get(id).map(|p| &p.status)
    }

    fn set(&mut self, id: &EventId, status: Status) {
        if let Some(p) = self.positions.get_mut(id) {
            p.status = status;
        }
    }

    fn on_price(
        &mut self,
        price: ValidPrice,
        event: Box<nostr::Event>,
        now: UnixTime,
    ) -> Vec<Effect> {
        let ignored = |reason| {
            vec![Effect::Ignored {
                event: price.event_id,
                reason,
            }]
        };
        if price.oracle != self.rules.oracle {
            return ignored("not signed by the configured oracle");
        }
        if now.0.saturating_sub(price.timestamp.0) > self.rules.max_price_age {
            return ignored("stale");
        }
        if self
            .marks
            .get(&price.pair)
            .is_some_and(|(m, _)| m.timestamp.0 > price.timestamp.0)
        {
            return ignored("older than the current mark");
        }
        self.marks
            .insert(price.pair.clone(), (price.clone(), (*event).clone()));
        let ids: Vec<EventId> = self
            .positions
            .values()
            .filter(|p| p.terms.pair == price.pair)
            .map(|p| p.id)
            .collect();
        ids.iter()
            .flat_map(|id| self.mark_one(id, &price, &event))
            .collect()
    }

    fn mark_one(&mut self, id: &EventId, price: &ValidPrice, event: &nostr::Event) -> Vec<Effect> {
        let Some(p) = self.positions.get_mut(id) else {
            return vec![];
        };
        if p.status != Status::Open || p.terms.decimals != price.decimals {
            return vec![];
        }
        let m = mark(&p.terms, price.price);
        p.last_mark = Some(m);
        let mut out = vec![Effect::Marked { id: *id, mark: m }];
        if p.terms.is_liquidatable(price.price) {
            p.status = Status::Liquidating {
                price_event: price.event_id,
            };
            out.push(Effect::Liquidate {
                id: *id,
                price_event: Box::new(event.clone()),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
