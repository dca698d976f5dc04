//! The scrape body, in one of the two formats Prometheus reads.
//!
//! `prometheus-client` encodes OpenMetrics text, which Prometheus asks
//! for first. Other scrapers (an older Prometheus, `promtool check
//! metrics`, `curl`) read the classic Prometheus text format (0.0.4),
//! which differs from that encoding in three ways only: a counter's
//! `# HELP` and `# TYPE` name the family with its `_total` suffix, as its
//! samples do; there is no `# UNIT` line; and there is no `# EOF`.
//! [`to_prometheus_text`] makes exactly those changes. Sample lines are
//! the same in both (label values are escaped alike).

use std::collections::BTreeSet;

/// `Content-Type` of the OpenMetrics body.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text body.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which body a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
    /// Prometheus text 0.0.4.
    Prometheus,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// it (Prometheus does), the Prometheus text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    /// Its `Content-Type`.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::Prometheus => PROMETHEUS_CONTENT_TYPE,
        }
    }
}

/// Rewrites an OpenMetrics text body as Prometheus text (see the module
/// documentation for the differences).
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(line) => out.push_str(line.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_their_suffix_and_the_eof_goes() {
        let om = "# HELP logbook_reconciles Reconciles.\n\
                  # TYPE logbook_reconciles counter\n\
                  logbook_reconciles_total{result=\"ok\"} 3\n\
                  # HELP logbook_leader Whether this instance leads.\n\
                  # TYPE logbook_leader gauge\n\
                  logbook_leader 1\n\
                  # HELP logbook_x_seconds X.\n\
                  # TYPE logbook_x_seconds histogram\n\
                  # UNIT logbook_x_seconds seconds\n\
                  logbook_x_seconds_sum 0.5\n\
                  # EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP logbook_reconciles_total Reconciles.\n\
             # TYPE logbook_reconciles_total counter\n\
             logbook_reconciles_total{result=\"ok\"} 3\n\
             # HELP logbook_leader Whether this instance leads.\n\
             # TYPE logbook_leader gauge\n\
             logbook_leader 1\n\
             # HELP logbook_x_seconds X.\n\
             # TYPE logbook_x_seconds histogram\n\
             logbook_x_seconds_sum 0.5\n"
        );
    }

    #[test]
    fn prometheus_gets_openmetrics_and_others_the_text_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }
}
