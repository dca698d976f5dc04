//! A regular-expression subset for OpenAPI `pattern`s: literals, `.`,
//! classes (`[a-z0-9.-]`, `[^/]`, `\s`, `\d`, `\w`), groups with `|`, the
//! quantifiers `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, and the anchors `^`
//! and `$` (end of text, as in Go's RE2). Matching follows sets of
//! positions, so it never backtracks exponentially.

/// One element of a parsed pattern.
enum Node {
    Lit(char),
    Any,
    Class(bool, Vec<(char, char)>),
    Start,
    End,
    Alt(Vec<Vec<Node>>),
    Rep(Box<Node>, usize, Option<usize>),
}

/// Whether `pattern` matches somewhere in `text` (Go's
/// `regexp.MatchString`), or `None` for a pattern outside the subset.
pub(super) fn matches(pattern: &str, text: &str) -> Option<bool> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let top = alternation(&chars, &mut pos)?;
    if pos != chars.len() {
        return None;
    }
    let s: Vec<char> = text.chars().collect();
    Some(step(&top, &vec![true; s.len() + 1], &s).contains(&true))
}

fn alternation(p: &[char], pos: &mut usize) -> Option<Node> {
    let mut branches = vec![Vec::new()];
    while let Some(&c) = p.get(*pos) {
        match c {
            ')' => break,
            '|' => {
                *pos += 1;
                branches.push(Vec::new());
            }
            _ => {
                let atom = atom(p, pos)?;
                let atom = quantified(p, pos, atom)?;
                branches.last_mut()?.push(atom);
            }
        }
    }
    Some(Node::Alt(branches))
}

fn atom(p: &[char], pos: &mut usize) -> Option<Node> {
    let c = *p.get(*pos)?;
    *pos += 1;
    Some(match c {
        '(' => {
            if p.get(*pos) == Some(&'?') {
                if p.get(*pos + 1) != Some(&':') {
                    return None;
                }
                *pos += 2;
            }
            let inner = alternation(p, pos)?;
            if p.get(*pos) != Some(&')') {
                return None;
            }
            *pos += 1;
            inner
        }
        '[' => class(p, pos)?,
        '.' => Node::Any,
        '^' => Node::Start,
        '$' => Node::End,
        '\\' => {
            let e = *p.get(*pos)?;
            *pos += 1;
            match escape_class(e) {
                Some(ranges) => Node::Class(e.is_ascii_uppercase(), ranges),
                None => Node::Lit(escaped(e)?),
            }
        }
        '*' | '+' | '?' | '{' | ')' | ']' => return None,
        other => Node::Lit(other),
    })
}

fn escaped(e: char) -> Option<char> {
    match e {
        'n' => Some('\n'),
        't' => Some('\t'),
        c if c.is_ascii_punctuation() => Some(c),
        _ => None,
    }
}

fn escape_class(e: char) -> Option<Vec<(char, char)>> {
    match e.to_ascii_lowercase() {
        's' => Some(vec![(' ', ' '), ('\t', '\n'), ('\u{b}', '\r')]),
        'd' => Some(vec![('0', '9')]),
        'w' => Some(vec![('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')]),
        _ => None,
    }
}

fn class(p: &[char], pos: &mut usize) -> Option<Node> {
    let negated = p.get(*pos) == Some(&'^');
    if negated {
        *pos += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(*pos)?;
        *pos += 1;
        if c == ']' && !first {
            return Some(Node::Class(negated, ranges));
        }
        first = false;
        let lo = if c == '\\' {
            let e = *p.get(*pos)?;
            *pos += 1;
            if let Some(more) = escape_class(e) {
                if e.is_ascii_uppercase() {
                    return None;
                }
                ranges.extend(more);
                continue;
            }
            escaped(e)?
        } else {
            c
        };
        if p.get(*pos) == Some(&'-') && p.get(*pos + 1).is_some_and(|n| *n != ']') {
            let hi = *p.get(*pos + 1)?;
            if hi == '\\' {
                return None;
            }
            *pos += 2;
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
}

fn quantified(p: &[char], pos: &mut usize, atom: Node) -> Option<Node> {
    let (min, max) = match p.get(*pos) {
        Some('*') => (0, None),
        Some('+') => (1, None),
        Some('?') => (0, Some(1)),
        Some('{') => {
            let close = p.get(*pos..)?.iter().position(|c| *c == '}')? + *pos;
            let body: String = p.get(*pos + 1..close)?.iter().collect();
            *pos = close;
            match body.split_once(',') {
                None => {
                    let n = body.parse().ok()?;
                    (n, Some(n))
                }
                Some((lo, "")) => (lo.parse().ok()?, None),
                Some((lo, hi)) => (lo.parse().ok()?, Some(hi.parse().ok()?)),
            }
        }
        _ => return Some(atom),
    };
    *pos += 1;
    if p.get(*pos) == Some(&'?') {
        *pos += 1; // lazy: the same matches exist
    }
    Some(Node::Rep(Box::new(atom), min, max))
}

/// The positions where `node` can end a match begun at one of `starts`
/// (`starts[i]`: a match may begin at character `i`).
fn step(node: &Node, starts: &[bool], s: &[char]) -> Vec<bool> {
    let mut out = vec![false; starts.len()];
    let at = |i: usize| starts.get(i).copied().unwrap_or(false);
    let mut one = |pred: &dyn Fn(char) -> bool| {
        for (i, c) in s.iter().enumerate() {
            if let (true, Some(o)) = (at(i) && pred(*c), out.get_mut(i + 1)) {
                *o = true;
            }
        }
    };
    match node {
        Node::Lit(c) => one(&|x| x == *c),
        Node::Any => one(&|x| x != '\n'),
        Node::Class(neg, ranges) => {
            one(&|x| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&x)) != *neg)
        }
        Node::Start => out.iter_mut().take(1).for_each(|o| *o = at(0)),
        Node::End => out.iter_mut().skip(s.len()).for_each(|o| *o = at(s.len())),
        Node::Alt(branches) => {
            for seq in branches {
                let ends = seq.iter().fold(starts.to_vec(), |pos, n| step(n, &pos, s));
                out.iter_mut().zip(ends).for_each(|(o, e)| *o |= e);
            }
        }
        Node::Rep(inner, min, max) => {
            let mut frontier = starts.to_vec();
            for k in 0..=(min + s.len() + 1) {
                if k >= *min {
                    out.iter_mut().zip(&frontier).for_each(|(o, f)| *o |= *f);
                }
                if *max == Some(k) || !frontier.contains(&true) {
                    break;
                }
                frontier = step(inner, &frontier, s);
                if k + 1 > *min {
                    // Only positions not reached before can lead further.
                    frontier.iter_mut().zip(&out).for_each(|(f, o)| *f &= !*o);
                }
            }
        }
    }
    out
}
