//! Plain-text output helpers: aligned tables like kubectl's, ages like
//! kubectl's (`45s`, `3m`, `2h`, `4d`), and journal times.

use std::io::Write;

use logbook_journal::Timestamp;

/// Writes `rows` under `headers`, each column as wide as its widest cell,
/// separated by three spaces (kubectl's look).
///
/// # Errors
/// Output errors.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count());
                text.push_str(&" ".repeat(pad.saturating_add(3)));
            }
        }
        text
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// How long ago `at` was, seen at `now`, as kubectl shows ages.
#[must_use]
pub fn age(at: Timestamp, now: Timestamp) -> String {
    let secs = now.millis_since(at).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A Kubernetes time as a journal timestamp.
#[must_use]
pub fn from_kube(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Timestamp {
    Timestamp(time.0.as_microsecond())
}

/// `-` for an absent value.
#[must_use]
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["NAME", "PHASE"],
            &[
                vec!["cache".into(), "Ready".into()],
                vec!["sessions-eu".into(), "Degraded".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME          PHASE\ncache         Ready\nsessions-eu   Degraded\n"
        );
    }

    #[test]
    fn ages_read_like_kubectls() {
        let now = Timestamp(10_000_000_000_000);
        let ago = |s: i64| Timestamp(now.0 - s * 1_000_000);
        assert_eq!(age(ago(5), now), "5s");
        assert_eq!(age(ago(600), now), "10m");
        assert_eq!(age(ago(3 * 3600), now), "3h");
        assert_eq!(age(ago(5 * 86_400), now), "5d");
        assert_eq!(age(ago(-5), now), "0s");
    }
}
