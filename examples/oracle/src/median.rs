//! The medianiser: one price out of several sources' readings, pure integer
//! arithmetic, no I/O. The median resists a minority of wrong or manipulated
//! sources; a quorum (`min_sources`) keeps one surviving source from setting
//! the price alone.

/// A pair's medianised price and the sources behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Median {
    /// The median in fixed decimals (the mean of the two middle readings,
    /// rounded down, for an even count).
    pub price: u64,
    /// The names of the sources that answered, in reading order.
    pub sources: Vec<String>,
}

/// Why there is no price this tick.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MedianError {
    /// Fewer sources answered than the quorum.
    #[error("{got} source(s) answered, the quorum is {need}")]
    NoQuorum {
        /// Sources that answered.
        got: usize,
        /// The quorum.
        need: usize,
    },
}

/// The median of `readings` (`(source, price)`), if at least `min_sources`
/// (and at least one) answered.
pub fn medianise(readings: &[(String, u64)], min_sources: usize) -> Result<Median, MedianError> {
    let need = min_sources.max(1);
    if readings.len() < need {
        return Err(MedianError::NoQuorum {
            got: readings.len(),
            need,
        });
    }
    let mut prices: Vec<u64> = readings.iter().map(|(_, p)| *p).collect();
    prices.sort_unstable();
    let mid = prices.len() / 2;
    let price = if prices.len() % 2 == 1 {
        prices[mid]
    } else {
        let sum = u128::from(prices[mid - 1]) + u128::from(prices[mid]);
        u64::try_from(sum / 2).unwrap_or(u64::MAX)
    };
    Ok(Median {
        price,
        sources: readings.iter().map(|(s, _)| s.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &[u64]) -> Vec<(String, u64)> {
        v.iter()
            .enumerate()
            .map(|(i, p)| (format!("s{i}"), *p))
            .collect()
    }

    #[test]
    fn the_median_ignores_a_minority_of_outliers() {
        assert_eq!(medianise(&r(&[100, 1, 102]), 2).map(|m| m.price), Ok(100));
        assert_eq!(
            medianise(&r(&[100, 101, 102, u64::MAX]), 1).map(|m| m.price),
            Ok(101)
        );
        assert_eq!(
            medianise(&r(&[u64::MAX, u64::MAX]), 1).map(|m| m.price),
            Ok(u64::MAX)
        );
        let m = medianise(&r(&[7]), 1).expect("one");
        assert_eq!((m.price, m.sources), (7, vec!["s0".to_owned()]));
    }

    #[test]
    fn below_the_quorum_there_is_no_price() {
        assert_eq!(
            medianise(&r(&[100]), 2),
            Err(MedianError::NoQuorum { got: 1, need: 2 })
        );
        assert_eq!(
            medianise(&[], 0),
            Err(MedianError::NoQuorum { got: 0, need: 1 })
        );
    }
}
