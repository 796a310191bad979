//! Which of the sidecar's rollups answers which part of a stats range.
//!
//! The sidecar keeps three `AggregatingMergeTree` rollups of `clicks`
//! (`analytics/src/schema.rs`): per UTC minute, hour and day, keyed by code,
//! domain and every dimension the stats routes read, holding `countState()`
//! and `uniqHLL12State(visitor_hash)`. A range (whole minutes: see
//! [`super::range`]) is cut into its whole days, the whole hours around them
//! and the whole minutes around those, each read from its own rollup, and
//! the parts' states are merged in one query (`UNION ALL`, then
//! `countMerge` / [`VISITORS_MERGE`]). So the numbers are those of the raw
//! rows: clicks exactly; visitors the estimate `uniqHLL12(visitor_hash)`
//! over the raw rows gives (merging the sketches loses nothing), which is
//! exact up to 16 visitors and within [`VISITORS_ERROR_PCT`] % of the exact
//! count above. A range of 30 days reads 30 day rows per key rather than
//! every click, and the raw table is never read.
//!
//! Visitor states are fixed-size HyperLogLogs (2.6 KiB at most) rather
//! than exact `uniq` sets (up to 256 KiB), whose merging was most of a busy
//! link's query time (perf/README.md, "Fixed-size visitor states").
//!
//! A series can only use rollups no coarser than its bucket (an hourly
//! series cannot come from daily rows), so the planner takes the coarsest
//! one allowed.
//!
//! Each bucket width has two rollups ([`Source`]): the wide one, keyed by
//! every dimension (what breakdowns, filters and cross rows need: a busy
//! link has thousands of dimension combinations per hour there), and the
//! series one, keyed by domain, rule, status and the bot flags only
//! (totals, series, the traffic split and top links without filters: a few
//! rows per link and bucket). A query names the narrowest source that
//! holds what it reads; both give the same numbers.

/// The merge function of the rollups' visitor states (the sidecar's
/// `analytics::schema::VISITORS`, `uniqHLL12`).
pub const VISITORS_MERGE: &str = "uniqHLL12Merge";

/// The bound of a visitor count's relative error, percent (the sidecar's
/// `analytics::schema::VISITORS_ERROR`): four standard errors of the
/// sketch; up to 16 visitors the count is exact.
pub const VISITORS_ERROR_PCT: f64 = 6.5;

/// The rollups of one bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollup {
    /// The wide table: every dimension.
    pub table: &'static str,
    /// The series table: domain, rule, status, `is_bot`, `is_preview`.
    pub series: &'static str,
    /// Their time column: the bucket's start, `DateTime` (or `Date` for days).
    pub column: &'static str,
    /// The bucket's width, seconds.
    pub secs: i64,
}

/// Per minute (`minute DateTime`).
pub const MINUTE: Rollup = Rollup {
    table: "org_clicks_per_minute_hll",
    series: "org_series_per_minute_hll",
    column: "minute",
    secs: 60,
};
/// Per hour (`hour DateTime`).
pub const HOUR: Rollup = Rollup {
    table: "org_clicks_per_hour_hll",
    series: "org_series_per_hour_hll",
    column: "hour",
    secs: 3600,
};
/// Per day (`day Date`).
pub const DAY: Rollup = Rollup {
    table: "org_clicks_per_day_hll",
    series: "org_series_per_day_hll",
    column: "day",
    secs: 86_400,
};

/// Which shape of rollup a query reads ([`union`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The wide rollups: any filter, any dimensions.
    Wide,
    /// The series rollups: the query's filter and key name only `org_id`,
    /// `code`, the time, `domain`, `rule`, `status`, `is_bot` and
    /// `is_preview`.
    Series,
}

impl Source {
    /// The narrowest source for the breakdown `name` (of
    /// [`super::DIMENSIONS`]) when `filtered` (filters name wide columns):
    /// the traffic split is the bot flags and `rule` a key, both of which the
    /// series rollups hold; every other breakdown is a wide column.
    pub fn for_breakdown(name: &str, filtered: bool) -> Source {
        if !filtered && (name == "traffic" || name == "rule") {
            Source::Series
        } else {
            Source::Wide
        }
    }
}

/// The rollups, finest first.
const ALL: [Rollup; 3] = [MINUTE, HOUR, DAY];

/// One part of a range and the rollup that reads it: `[from, to)`, Unix
/// seconds, both multiples of the rollup's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub rollup: Rollup,
    pub from: i64,
    pub to: i64,
}

/// `[from, to)` (whole minutes) cut into parts, each read from the coarsest
/// rollup up to `coarsest` whose buckets it fills: whole days in the middle,
/// whole hours around them, whole minutes at the ends. Empty parts are left
/// out, so a range gives at most five parts.
pub fn plan(from: i64, to: i64, coarsest: Rollup) -> Vec<Part> {
    debug_assert!(from % 60 == 0 && to % 60 == 0, "whole minutes");
    let levels: Vec<Rollup> = ALL
        .iter()
        .copied()
        .filter(|r| r.secs <= coarsest.secs)
        .collect();
    let mut parts = Vec::new();
    split(from, to, &levels, &mut parts);
    parts.sort_by_key(|p| p.from);
    parts
}

/// Cuts `[from, to)` with the coarsest of `levels` (the last), the rest
/// going to the finer ones.
fn split(from: i64, to: i64, levels: &[Rollup], out: &mut Vec<Part>) {
    let Some((&rollup, finer)) = levels.split_last() else {
        return;
    };
    if from >= to {
        return;
    }
    let start = ceil(from, rollup.secs);
    let end = floor(to, rollup.secs);
    if start < end && !finer.is_empty() {
        split(from, start, finer, out);
        out.push(Part {
            rollup,
            from: start,
            to: end,
        });
        split(end, to, finer, out);
    } else if finer.is_empty() {
        out.push(Part { rollup, from, to });
    } else {
        split(from, to, finer, out);
    }
}

fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

fn ceil(t: i64, step: i64) -> i64 {
    floor(t + step - 1, step)
}

/// `t` rounded down to a whole minute.
pub fn minute_floor(t: i64) -> i64 {
    floor(t, 60)
}

/// `t` rounded up to a whole minute.
pub fn minute_ceil(t: i64) -> i64 {
    ceil(t, 60)
}

impl Part {
    /// The part's rows of its rollup: `WHERE` on its time column, both ends
    /// our own integers (no client text).
    fn range_condition(&self) -> String {
        let Part { rollup, from, to } = *self;
        let col = rollup.column;
        if rollup == DAY {
            format!(
                "{col} >= toDate(toDateTime({from}), 'UTC') AND {col} < toDate(toDateTime({to}), 'UTC')"
            )
        } else {
            format!("{col} >= toDateTime({from}) AND {col} < toDateTime({to})")
        }
    }

    /// The start of the `bucket_fn` bucket (`toStartOfHour`...) each row of
    /// this part falls in, Unix seconds. A day row is its own day bucket
    /// (the planner never reads days for a finer series).
    fn bucket_start(&self, bucket_fn: &str) -> String {
        let col = self.rollup.column;
        if self.rollup == DAY {
            format!("toUInt32(toUInt32({col}) * 86400)")
        } else {
            format!("toUInt32({bucket_fn}({col}, 'UTC'))")
        }
    }
}

/// What each part selects as `key` besides the states `c` and `v`.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// Nothing (totals): the constant 0.
    None,
    /// The start of the series bucket, through `toStartOfMinute`,
    /// `toStartOfHour` or `toStartOfDay`.
    Bucket(&'a str),
    /// A column, as a string (a breakdown, or the code for top links).
    Column(&'a str),
    /// Cross-dimension rows: the bucket start as `key` (as [`Key::Bucket`])
    /// and the columns' values, as strings, in the array `vals`.
    Cross(&'a str, &'a [&'a str]),
}

impl Key<'_> {
    /// The columns [`union`] selects besides the states, to group by.
    pub fn columns(&self) -> &'static str {
        match self {
            Key::Cross(..) => "key, vals",
            _ => "key",
        }
    }
}

/// The `UNION ALL` of the parts' rows matching `filter` (a `WHERE` clause
/// with `?` placeholders, which the caller binds once per part), each as
/// `(key, c, v)` (or `(key, vals, c, v)`: [`Key::columns`]) with `c` the
/// count state and `v` the visitors state. Read it as `SELECT key,
/// countMerge(c), uniqHLL12Merge(v) FROM (...) GROUP BY key`
/// ([`VISITORS_MERGE`]).
pub fn union(parts: &[Part], source: Source, key: Key<'_>, filter: &str) -> String {
    parts
        .iter()
        .map(|p| {
            let table = match source {
                Source::Wide => p.rollup.table,
                Source::Series => p.rollup.series,
            };
            let key = match key {
                Key::None => "toUInt32(0) AS key".to_owned(),
                Key::Bucket(f) => format!("{} AS key", p.bucket_start(f)),
                Key::Column(c) => format!("toString({c}) AS key"),
                Key::Cross(f, columns) => {
                    let values: Vec<String> =
                        columns.iter().map(|c| format!("toString({c})")).collect();
                    format!(
                        "{} AS key, [{}] AS vals",
                        p.bucket_start(f),
                        values.join(", ")
                    )
                }
            };
            format!(
                "SELECT {key}, clicks AS c, visitors AS v FROM {table} WHERE {filter} AND {range}",
                range = p.range_condition()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const D0: i64 = 1_767_225_600;

    fn shape(parts: &[Part]) -> Vec<(&'static str, i64, i64)> {
        parts
            .iter()
            .map(|p| (p.rollup.column, p.from - D0, p.to - D0))
            .collect()
    }

    #[test]
    fn whole_days_read_the_day_rollup_only() {
        let parts = plan(D0, D0 + 30 * 86_400, DAY);
        assert_eq!(shape(&parts), [("day", 0, 30 * 86_400)]);
    }

    #[test]
    fn ragged_ends_read_hours_then_minutes() {
        // 2026-01-01T10:07 to 2026-01-04T05:30.
        let from = D0 + 10 * 3600 + 7 * 60;
        let to = D0 + 3 * 86_400 + 5 * 3600 + 30 * 60;
        let parts = plan(from, to, DAY);
        assert_eq!(
            shape(&parts),
            [
                ("minute", from - D0, 11 * 3600),
                ("hour", 11 * 3600, 86_400),
                ("day", 86_400, 3 * 86_400),
                ("hour", 3 * 86_400, 3 * 86_400 + 5 * 3600),
                ("minute", 3 * 86_400 + 5 * 3600, to - D0),
            ]
        );
        // Contiguous, covering exactly the range.
        assert_eq!(parts.first().unwrap().from, from);
        assert_eq!(parts.last().unwrap().to, to);
        assert!(parts.windows(2).all(|w| w[0].to == w[1].from));
    }

    #[test]
    fn a_series_never_reads_rows_coarser_than_its_bucket() {
        let parts = plan(D0 + 60, D0 + 3 * 86_400, HOUR);
        assert!(parts.iter().all(|p| p.rollup != DAY), "{parts:?}");
        assert_eq!(
            shape(&parts),
            [("minute", 60, 3600), ("hour", 3600, 3 * 86_400)]
        );
        let parts = plan(D0, D0 + 86_400, MINUTE);
        assert_eq!(shape(&parts), [("minute", 0, 86_400)]);
    }

    #[test]
    fn less_than_an_hour_reads_minutes() {
        let parts = plan(D0 + 600, D0 + 1200, DAY);
        assert_eq!(shape(&parts), [("minute", 600, 1200)]);
    }

    #[test]
    fn each_source_reads_its_tables() {
        // 2026-01-01T23:30 to 2026-01-03T00:00: minutes, then a whole day.
        let parts = plan(D0 + 23 * 3600 + 1800, D0 + 2 * 86_400, DAY);
        let tables = |sql: String| -> Vec<String> {
            sql.split(" FROM ")
                .skip(1)
                .map(|s| s.split(' ').next().unwrap().to_owned())
                .collect()
        };
        let column = Key::Column("country");
        let wide = union(&parts, Source::Wide, column, "org_id = ?");
        assert_eq!(
            tables(wide),
            ["org_clicks_per_minute_hll", "org_clicks_per_day_hll"]
        );
        let series = union(&parts, Source::Series, Key::None, "org_id = ?");
        assert_eq!(
            tables(series),
            ["org_series_per_minute_hll", "org_series_per_day_hll"]
        );
        assert_eq!(Source::for_breakdown("traffic", false), Source::Series);
        assert_eq!(Source::for_breakdown("traffic", true), Source::Wide);
        assert_eq!(Source::for_breakdown("os", false), Source::Wide);
    }

    #[test]
    fn minutes_round_outwards() {
        assert_eq!(minute_floor(D0 + 59), D0);
        assert_eq!(minute_ceil(D0 + 1), D0 + 60);
        assert_eq!(minute_ceil(D0), D0);
    }
}
