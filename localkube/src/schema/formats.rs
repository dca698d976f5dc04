//! The string `format`s the real server checks (kube-openapi's strfmt
//! registry restricted to what CRDs support). Numeric formats such as
//! `int32` are type annotations only there, so they are not range-checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `s` satisfies `format`; unknown formats always pass.
pub(crate) fn check(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => is_date_time(s),
        "date" => is_date(s),
        "duration" => is_duration(s),
        "byte" => decode_base64(s).is_some(),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => is_uuid(s),
        "hostname" => is_hostname(s),
        "email" => is_email(s),
        "mac" => is_mac(s),
        "uri" => is_uri(s),
        _ => true,
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn in_range(s: &str, lo: u32, hi: u32) -> bool {
    s.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v))
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2)
        && in_range(m, 1, 12) && in_range(d, 1, 31))
}

/// RFC 3339 (`2006-01-02T15:04:05Z`, fractional seconds and offsets).
fn is_date_time(s: &str) -> bool {
    let Some((date, time)) = s.split_once(['T', 't', ' ']) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let (clock, zone) = if let Some(t) = time.strip_suffix(['Z', 'z']) {
        (t, None)
    } else if let Some(i) = time.rfind(['+', '-']) {
        (time.get(..i).unwrap_or(""), time.get(i + 1..))
    } else {
        return false;
    };
    if let Some(zone) = zone {
        let ok = matches!(zone.split_once(':'), Some((h, m)) if digits(h, 2) && digits(m, 2) && in_range(h, 0, 23) && in_range(m, 0, 59));
        if !ok {
            return false;
        }
    }
    let (hms, frac) = clock
        .split_once('.')
        .map_or((clock, None), |(a, b)| (a, Some(b)));
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    matches!(parts.as_slice(), [h, m, sec] if digits(h, 2) && digits(m, 2) && digits(sec, 2)
        && in_range(h, 0, 23) && in_range(m, 0, 59) && in_range(sec, 0, 60))
}

/// Go `time.ParseDuration` syntax plus the `d`/`w` units strfmt accepts.
fn is_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if num_end == 0 {
            return false;
        }
        rest = rest.get(num_end..).unwrap_or("");
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_end).unwrap_or("");
        if !["ns", "us", "µs", "ms", "s", "m", "h", "d", "w"].contains(&unit) {
            return false;
        }
        rest = rest.get(unit_end..).unwrap_or("");
        any = true;
    }
    any
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => in_range(bits, 0, 32),
        Ok(IpAddr::V6(_)) => in_range(bits, 0, 128),
        Err(_) => false,
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_email(s: &str) -> bool {
    matches!(s.rsplit_once('@'), Some((local, domain)) if !local.is_empty() && !local.contains(char::is_whitespace) && is_hostname(domain))
}

fn is_mac(s: &str) -> bool {
    let groups: Vec<&str> = s.split([':', '-']).collect();
    matches!(groups.len(), 6 | 8 | 20)
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Go's `url.ParseRequestURI` accepts absolute URIs and absolute paths.
fn is_uri(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    match s.split_once(':') {
        Some((scheme, rest)) => {
            scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Standard padded base64 (Go's `base64.StdEncoding`).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let last = (ci + 1) * 4 == bytes.len();
        let mut acc: u32 = 0;
        let mut pad = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if last && i >= 2 => {
                    pad += 1;
                    0
                }
                _ => return None,
            };
            if pad > 0 && b != b'=' {
                return None;
            }
            acc = (acc << 6) | u32::from(v);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.push(a);
        if pad < 2 {
            out.push(b);
        }
        if pad < 1 {
            out.push(c);
        }
    }
    Some(out)
}
