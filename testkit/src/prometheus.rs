//! Reading the services' `/metrics` (Prometheus text exposition) in tests.

use std::collections::HashMap;

/// Every sample: the name with its labels as written (`engine_responses_total{core="0",status="301"}`)
/// to its value. Comment lines and unparsable values are skipped.
pub fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of `metric`'s samples whose labels contain every one of `labels`
/// (e.g. `["status=\"301\""]`); 0 when there is none.
pub fn sum(samples: &HashMap<String, f64>, metric: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(name, _)| {
            let (base, rest) = name.split_once('{').unwrap_or((name, ""));
            base == metric && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Each metric's samples added up, labels dropped (per-core series of a
/// counter add up to the process's total).
pub fn totals(samples: &HashMap<String, f64>) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for (series, value) in samples {
        let name = series.split('{').next().unwrap_or(series);
        *out.entry(name.to_owned()).or_insert(0.0) += value;
    }
    out
}

/// `GET http://{addr}/metrics`, parsed.
pub async fn scrape(addr: &str) -> anyhow::Result<HashMap<String, f64>> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_and_sums() {
        let text = "# HELP x y\n# TYPE x counter\nx{core=\"0\",status=\"301\"} 3\nx{core=\"1\",status=\"301\"} 4\nx{core=\"1\",status=\"404\"} 1\ny 2.5\nbad line\n";
        let samples = super::parse(text);
        assert_eq!(samples.len(), 4);
        assert_eq!(samples["y"], 2.5);
        assert_eq!(super::sum(&samples, "x", &["status=\"301\""]), 7.0);
        assert_eq!(super::sum(&samples, "x", &[]), 8.0);
        assert_eq!(
            super::sum(&samples, "x", &["core=\"1\"", "status=\"404\""]),
            1.0
        );
        assert_eq!(super::sum(&samples, "z", &[]), 0.0);
        let totals = super::totals(&samples);
        assert_eq!((totals["x"], totals["y"], totals.len()), (8.0, 2.5, 2));
    }
}
