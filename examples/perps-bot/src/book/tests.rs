use ark_relay_protocol::content::{AssetRef, WireAmount};
use ark_relay_protocol::perps::{
    parse_price_event, price_event_builder, OraclePriceContent, ValidTerms,
};
use ark_relay_protocol::pubkey_from_nostr;
use nostr::Keys;

use super::*;

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("pk")
}

fn terms(oracle: &Keys, side: Side, pair: &str) -> ValidTerms {
    let dex = pk(&Keys::generate());
    ValidTerms {
        margin_asset: AssetRef::gbtc(),
        margin: 1_000_000,
        side,
        leverage: 10,
        entry_price: 6_543_210,
        oracle: pk(oracle),
        pair: pair.into(),
        decimals: 2,
        maintenance_margin_bps: 50,
        dex,
        insurance_fund: dex,
        position_token: AssetRef::gbtc(),
    }
}

fn price(oracle: &Keys, pair: &str, p: u64, at: i64) -> (ValidPrice, Box<nostr::Event>) {
    let ev = price_event_builder(&OraclePriceContent {
        v: 1,
        pair: pair.into(),
        price: WireAmount::new(p),
        decimals: 2,
        timestamp: at,
        sources: vec!["a".into()],
    })
    .expect("builder")
    .sign_with_keys(oracle)
    .expect("sign");
    (parse_price_event(&ev).expect("valid"), Box::new(ev))
}

fn position(n: u8, terms: ValidTerms) -> Box<Position> {
    let user = Keys::generate();
    Box::new(Position {
        id: EventId::from_bytes([n; 32]),
        user: pk(&user),
        terms,
        ticker: "P1".into(),
        open_perp: nostr::EventBuilder::text_note("open")
            .sign_with_keys(&user)
            .expect("sign"),
        token_vtxo: None,
        status: Status::Open,
        last_mark: None,
    })
}

fn feed(book: &mut Book, p: (ValidPrice, Box<nostr::Event>), now: i64) -> Vec<Effect> {
    book.step(Input::Price {
        price: p.0,
        event: p.1,
        now: UnixTime(now),
    })
}

#[test]
fn the_mark_reaches_the_maintenance_at_the_liquidation_price() {
    let oracle = Keys::generate();
    for side in [Side::Long, Side::Short] {
        let t = terms(&oracle, side, "BTC/USD");
        let at_entry = mark(&t, t.entry_price);
        assert_eq!((at_entry.pnl, at_entry.equity), (0, 1_000_000));
        assert_eq!(at_entry.maintenance, 50_000, "0.5 % of 10 000 000");
        let liq = t.liquidation_price();
        let m = mark(&t, liq);
        assert!(
            m.equity <= 50_000 && m.equity > 49_990,
            "{side:?}: equity {} at {liq}",
            m.equity
        );
        // 1 % in the position's favour is 10 % of the margin at 10×.
        let up = t.entry_price + t.entry_price / 100;
        let sign = if side == Side::Long { 1 } else { -1 };
        assert!((mark(&t, up).pnl - sign * 100_000).abs() <= 1);
    }
}

#[test]
fn prices_from_the_oracle_mark_every_position_of_their_pair() {
    let oracle = Keys::generate();
    let mut book = Book::new(BookRules {
        oracle: pk(&oracle),
        max_price_age: 60,
    });
    book.step(Input::Opened(position(
        1,
        terms(&oracle, Side::Long, "BTC/USD"),
    )));
    book.step(Input::Opened(position(
        2,
        terms(&oracle, Side::Short, "ETH/USD"),
    )));
    let fx = feed(
        &mut book,
        price(&oracle, "BTC/USD", 6_600_000, 1_000),
        1_000,
    );
    assert!(
        matches!(fx.as_slice(), [Effect::Marked { id, mark }] if *id == EventId::from_bytes([1; 32]) && mark.pnl > 0),
        "{fx:?}"
    );
    assert_eq!(book.mark_price("BTC/USD").map(|p| p.price), Some(6_600_000));
    let fx = feed(
        &mut book,
        price(&oracle, "ETH/USD", 6_600_000, 1_000),
        1_000,
    );
    assert!(matches!(fx.as_slice(), [Effect::Marked { mark, .. }] if mark.pnl < 0));

    // Another key's price, a stale one and an older one are ignored.
    let mallory = Keys::generate();
    let fx = feed(&mut book, price(&mallory, "BTC/USD", 1, 1_000), 1_000);
    assert!(matches!(fx.as_slice(), [Effect::Ignored { reason, .. }] if reason.contains("oracle")));
    let fx = feed(&mut book, price(&oracle, "BTC/USD", 1, 900), 1_000);
    assert!(matches!(
        fx.as_slice(),
        [Effect::Ignored {
            reason: "stale",
            ..
        }]
    ));
    let fx = feed(&mut book, price(&oracle, "BTC/USD", 1, 990), 1_000);
    assert!(matches!(fx.as_slice(), [Effect::Ignored { .. }]));
    assert_eq!(book.mark_price("BTC/USD").map(|p| p.price), Some(6_600_000));
    assert!(book
        .positions()
        .all(|p| p.status == Status::Open && p.last_mark.is_some()));
}

#[test]
fn a_price_beyond_the_threshold_liquidates_once_and_a_refusal_reopens() {
    let oracle = Keys::generate();
    let mut book = Book::new(BookRules {
        oracle: pk(&oracle),
        max_price_age: 60,
    });
    let t = terms(&oracle, Side::Long, "BTC/USD");
    let liq = t.liquidation_price();
    let id = EventId::from_bytes([7; 32]);
    book.step(Input::Opened(position(7, t)));
    assert!(!feed(&mut book, price(&oracle, "BTC/USD", liq + 1, 10), 10)
        .iter()
        .any(|e| matches!(e, Effect::Liquidate { .. })));
    let low = price(&oracle, "BTC/USD", liq, 11);
    let low_id = low.0.event_id;
    let fx = feed(&mut book, low, 11);
    assert!(
        matches!(fx.as_slice(), [Effect::Marked { .. }, Effect::Liquidate { id: i, price_event }]
            if *i == id && ark_relay_protocol::event_id_from_nostr(&price_event.id) == low_id),
        "{fx:?}"
    );
    // Already liquidating: the next low price does not liquidate again.
    assert!(feed(&mut book, price(&oracle, "BTC/USD", liq - 5, 12), 12).is_empty());
    book.step(Input::LiquidationRefused {
        id,
        code: Some(8001),
    });
    assert_eq!(book.position(&id).map(|p| &p.status), Some(&Status::Open));
    let fx = feed(&mut book, price(&oracle, "BTC/USD", liq - 6, 13), 13);
    assert!(fx.iter().any(|e| matches!(e, Effect::Liquidate { .. })));
    book.step(Input::Liquidated {
        id,
        intent: EventId::from_bytes([0; 32]),
        ark_txid: "tx".into(),
    });
    assert!(feed(&mut book, price(&oracle, "BTC/USD", 1, 14), 14).is_empty());

    // A position opened when the price is already beyond its threshold.
    let fx = book.step(Input::Opened(position(
        8,
        terms(&oracle, Side::Long, "BTC/USD"),
    )));
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Liquidate { .. })),
        "{fx:?}"
    );
}

#[test]
fn closing_takes_a_position_out_of_the_marks() {
    let oracle = Keys::generate();
    let mut book = Book::new(BookRules {
        oracle: pk(&oracle),
        max_price_age: 60,
    });
    let id = EventId::from_bytes([3; 32]);
    book.step(Input::Opened(position(
        3,
        terms(&oracle, Side::Long, "BTC/USD"),
    )));
    book.step(Input::Closing { id });
    assert!(feed(&mut book, price(&oracle, "BTC/USD", 1, 5), 5).is_empty());
    book.step(Input::CloseDone { id, settled: false });
    assert_eq!(book.position(&id).map(|p| &p.status), Some(&Status::Open));
    book.step(Input::Closing { id });
    book.step(Input::CloseDone { id, settled: true });
    assert_eq!(book.position(&id).map(|p| &p.status), Some(&Status::Closed));
}
