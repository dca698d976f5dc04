//! Spec mutations for Logbook's custom resources, generated from their
//! schemas in the style of Acto (Gu et al., SOSP '23, "Acto: Automatic
//! End-to-End Testing for Operation Correctness of Cloud System
//! Management").
//!
//! Acto's idea: an operator's input is its custom resource's spec, and the
//! CRD's OpenAPI schema says what that input may be. Walking the schema
//! gives every field with its type and constraints ([`schema`]); per-type
//! mutations of each field (numbers to their bounds and just past them,
//! booleans toggled, enums through every value, strings emptied or made
//! too long, lists grown and shrunk, maps given keys, fields deleted or
//! added) give the generic test cases, and a few semantic mutations that a
//! generic generator would not find (a memory limit no Valkey fits in, a
//! node selector no node satisfies, a directive the operator owns, a
//! topology switch, ...) are added by hand from the real field names
//! ([`mutate`]). Seeded chains of mutations ([`chain`]) are what a trial
//! applies to a running cluster, one step at a time.
//!
//! This module only generates. It is pure: it reads the CRD file it is
//! given and nothing else, touches no network and no cluster. Applying the
//! chains to real clusters and checking oracles (the cluster converged to
//! the spec, a refused step left it alone, reverting a step restored the
//! previous state) is done elsewhere.
//!
//! # Honest expectations
//!
//! Every mutation says what the API server should do with it
//! ([`Expectation`]). `RefuseBySchema` is claimed only when the CRD really
//! forbids the result: [`validate`] checks it the way the API server does,
//! defaults applied first, with the structural schema (types, enums,
//! bounds, lengths, patterns, item counts, required fields) and the CRD's
//! `x-kubernetes-validations` rules (including the transition rules that
//! compare with the previous spec: `topology` is immutable, `storage.size`
//! may only grow, ...). A rule or pattern this module cannot evaluate makes
//! the mutation `Unknown` rather than a guess. So do schema-valid values
//! that something besides the schema checks (Kubernetes's own validation of
//! the pod fields the spec embeds, the operator's checks of `config`, an
//! image or a Secret that must exist): the oracle decides those.
//!
//! Two small evaluators the validator needs live here, private: a
//! regular-expression subset for `pattern` (enough for every pattern in the
//! CRDs; anything else is "cannot tell") and a CEL subset for the rules.

pub mod chain;
pub mod mutate;
pub mod schema;

pub use chain::{ApplyError, Chain, MAX_CHAIN_LEN, apply, chain, chains, example_spec};
pub use mutate::{
    Expectation, Mutation, MutationKind, Op, checked_elsewhere_prefixes, mutations_for, pointer_of,
};
pub use schema::{
    CrdSchema, Field, FieldType, Rule, SchemaError, Segment, Verdict, load_crds, parse_crds,
    validate, violates,
};

/// A regular-expression subset for OpenAPI `pattern`s: literals, `.`,
/// classes (`[a-z0-9.-]`, `[^/]`, `\s`, `\d`, `\w`), groups with `|`, the
/// quantifiers `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, and the anchors `^`
/// and `$` (end of text, as in Go's RE2). Matching follows sets of
/// positions, so it never backtracks exponentially.
mod pattern {
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
}

/// A subset of CEL, enough for `x-kubernetes-validations` rules like the
/// CRDs': `self`/`oldSelf`, field selection, `has()`, `!`, `&&`, `||`,
/// comparisons, integer arithmetic, `? :`, and `quantity()` with
/// `isGreaterThan`/`isLessThan`/`compareTo`. Anything else (a float, a
/// macro, a function not listed, or a runtime error such as a missing
/// field) is "cannot tell".
mod cel {
    use std::borrow::Cow;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use serde_json::Value;

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Ident(String),
        Lit(Value),
        P(&'static str),
    }

    const PUNCT: [&str; 22] = [
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "%", "?", ":", "(", ")", ".", ",", "+",
        "-", "*", "/", "[", "]",
    ];

    fn lex(src: &str) -> Option<Vec<Tok>> {
        let c: Vec<char> = src.chars().collect();
        let mut i = 0;
        let mut out = Vec::new();
        while let Some(&ch) = c.get(i) {
            let rest: String = c.get(i..(i + 2).min(c.len()))?.iter().collect();
            if ch.is_whitespace() {
                i += 1;
            } else if ch.is_ascii_alphabetic() || ch == '_' {
                let start = i;
                while c
                    .get(i)
                    .is_some_and(|x| x.is_ascii_alphanumeric() || *x == '_')
                {
                    i += 1;
                }
                out.push(Tok::Ident(c.get(start..i)?.iter().collect()));
            } else if ch.is_ascii_digit() {
                let start = i;
                while c.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let text: String = c.get(start..i)?.iter().collect();
                out.push(Tok::Lit(Value::from(text.parse::<i64>().ok()?)));
            } else if ch == '\'' || ch == '"' {
                let mut s = String::new();
                i += 1;
                loop {
                    let x = *c.get(i)?;
                    i += 1;
                    match x {
                        q if q == ch => break,
                        '\\' => {
                            s.push(*c.get(i)?);
                            i += 1;
                        }
                        other => s.push(other),
                    }
                }
                out.push(Tok::Lit(Value::String(s)));
            } else {
                let p = PUNCT.iter().find(|p| rest.starts_with(**p))?;
                i += p.len();
                out.push(Tok::P(p));
            }
        }
        Some(out)
    }

    #[derive(Debug)]
    enum Expr {
        Lit(Value),
        Var(String),
        Sel(Box<Expr>, String),
        Call(String, Vec<Expr>),
        Method(Box<Expr>, String, Vec<Expr>),
        Not(Box<Expr>),
        Neg(Box<Expr>),
        Bin(&'static str, Box<Expr>, Box<Expr>),
        Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    }

    struct Parser {
        toks: Vec<Tok>,
        pos: usize,
    }

    impl Parser {
        fn eat(&mut self, p: &str) -> bool {
            let hit = matches!(self.toks.get(self.pos), Some(Tok::P(q)) if *q == p);
            if hit {
                self.pos += 1;
            }
            hit
        }

        fn expr(&mut self) -> Option<Expr> {
            let c = self.binary(0)?;
            if !self.eat("?") {
                return Some(c);
            }
            let a = self.expr()?;
            if !self.eat(":") {
                return None;
            }
            let b = self.expr()?;
            Some(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)))
        }

        fn binary(&mut self, level: usize) -> Option<Expr> {
            const LEVELS: [&[&str]; 5] = [
                &["||"],
                &["&&"],
                &["==", "!=", "<=", ">=", "<", ">"],
                &["+", "-"],
                &["*", "/", "%"],
            ];
            let Some(ops) = LEVELS.get(level) else {
                return self.unary();
            };
            let mut lhs = self.binary(level + 1)?;
            while let Some(op) = ops.iter().find(|op| self.eat(op)) {
                let rhs = self.binary(level + 1)?;
                lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
            }
            Some(lhs)
        }

        fn unary(&mut self) -> Option<Expr> {
            if self.eat("!") {
                return Some(Expr::Not(Box::new(self.unary()?)));
            }
            if self.eat("-") {
                return Some(Expr::Neg(Box::new(self.unary()?)));
            }
            let mut e = self.primary()?;
            while self.eat(".") {
                let Some(Tok::Ident(name)) = self.toks.get(self.pos).cloned() else {
                    return None;
                };
                self.pos += 1;
                e = if self.eat("(") {
                    Expr::Method(Box::new(e), name, self.args()?)
                } else {
                    Expr::Sel(Box::new(e), name)
                };
            }
            Some(e)
        }

        fn args(&mut self) -> Option<Vec<Expr>> {
            let mut args = Vec::new();
            if self.eat(")") {
                return Some(args);
            }
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    return Some(args);
                }
                if !self.eat(",") {
                    return None;
                }
            }
        }

        fn primary(&mut self) -> Option<Expr> {
            let tok = self.toks.get(self.pos).cloned()?;
            self.pos += 1;
            match tok {
                Tok::Lit(v) => Some(Expr::Lit(v)),
                Tok::Ident(name) => match name.as_str() {
                    "true" => Some(Expr::Lit(Value::Bool(true))),
                    "false" => Some(Expr::Lit(Value::Bool(false))),
                    "null" => Some(Expr::Lit(Value::Null)),
                    _ if self.eat("(") => Some(Expr::Call(name, self.args()?)),
                    _ => Some(Expr::Var(name)),
                },
                Tok::P("(") => {
                    let e = self.expr()?;
                    self.eat(")").then_some(e)
                }
                Tok::P(_) => None,
            }
        }
    }

    fn parse(rule: &str) -> Option<Expr> {
        let mut parser = Parser {
            toks: lex(rule)?,
            pos: 0,
        };
        let expr = parser.expr()?;
        (parser.pos == parser.toks.len()).then_some(expr)
    }

    thread_local! {
        /// Rules parsed so far: the same few are evaluated again and again.
        static PARSED: RefCell<HashMap<String, Option<Rc<Expr>>>> = RefCell::default();
    }

    fn parsed(rule: &str) -> Option<Rc<Expr>> {
        PARSED.with(|cache| {
            if let Some(hit) = cache.try_borrow().ok()?.get(rule) {
                return hit.clone();
            }
            let expr = parse(rule).map(Rc::new);
            if let Ok(mut c) = cache.try_borrow_mut() {
                c.insert(rule.to_owned(), expr.clone());
            }
            expr
        })
    }

    /// A value during evaluation: JSON (borrowed from the object when it
    /// can be), or a Kubernetes quantity.
    #[derive(Debug, Clone)]
    enum V<'a> {
        J(Cow<'a, Value>),
        Q(f64),
    }

    fn own<'a>(v: Value) -> Option<V<'a>> {
        Some(V::J(Cow::Owned(v)))
    }

    /// What `rule` says about `this` (and `old`, for a transition rule):
    /// `Some(true)` when it holds or does not apply (a transition rule
    /// without an old value), `None` when it cannot be evaluated here.
    pub(super) fn check(rule: &str, this: &Value, old: Option<&Value>) -> Option<bool> {
        let expr = parsed(rule)?;
        if old.is_none() && rule.contains("oldSelf") {
            return Some(true);
        }
        match eval(&expr, this, old)? {
            V::J(v) => v.as_bool(),
            V::Q(_) => None,
        }
    }

    fn boolean(e: &Expr, this: &Value, old: Option<&Value>) -> Option<bool> {
        match eval(e, this, old)? {
            V::J(v) => v.as_bool(),
            V::Q(_) => None,
        }
    }

    fn eval<'a>(e: &Expr, this: &'a Value, old: Option<&'a Value>) -> Option<V<'a>> {
        let present = |v: &Value| !v.is_null();
        match e {
            Expr::Lit(v) => own(v.clone()),
            Expr::Var(name) => match name.as_str() {
                "self" => Some(V::J(Cow::Borrowed(this))),
                "oldSelf" => Some(V::J(Cow::Borrowed(old?))),
                _ => None,
            },
            Expr::Sel(base, field) => match eval(base, this, old)? {
                V::J(Cow::Borrowed(Value::Object(m))) => {
                    Some(V::J(Cow::Borrowed(m.get(field).filter(|v| present(v))?)))
                }
                V::J(Cow::Owned(Value::Object(mut m))) => own(m.remove(field).filter(present)?),
                _ => None,
            },
            Expr::Call(f, args) => match (f.as_str(), args.as_slice()) {
                ("has", [Expr::Sel(base, field)]) => match eval(base, this, old)? {
                    V::J(v) => own(Value::Bool(v.as_object()?.get(field).is_some_and(present))),
                    V::Q(_) => None,
                },
                ("quantity", [arg]) => match eval(arg, this, old)? {
                    V::J(v) => Some(V::Q(quantity(v.as_str()?)?)),
                    V::Q(_) => None,
                },
                _ => None,
            },
            Expr::Method(base, name, args) => {
                let b = eval(base, this, old)?;
                let a: Option<Vec<V>> = args.iter().map(|a| eval(a, this, old)).collect();
                match (b, name.as_str(), a?.as_slice()) {
                    (V::Q(x), "isGreaterThan", [V::Q(y)]) => own(Value::Bool(x > *y)),
                    (V::Q(x), "isLessThan", [V::Q(y)]) => own(Value::Bool(x < *y)),
                    (V::Q(x), "compareTo", [V::Q(y)]) => own(Value::from(x.partial_cmp(y)? as i64)),
                    _ => None,
                }
            }
            Expr::Not(x) => own(Value::Bool(!boolean(x, this, old)?)),
            Expr::Neg(x) => match eval(x, this, old)? {
                V::J(v) => own(Value::from(v.as_i64()?.checked_neg()?)),
                V::Q(_) => None,
            },
            Expr::Cond(c, a, b) => {
                if boolean(c, this, old)? {
                    eval(a, this, old)
                } else {
                    eval(b, this, old)
                }
            }
            Expr::Bin(op @ ("&&" | "||"), a, b) => {
                let (x, y) = (boolean(a, this, old), boolean(b, this, old));
                let short = *op == "||"; // the value that decides alone
                if x == Some(short) || y == Some(short) {
                    own(Value::Bool(short))
                } else {
                    x.zip(y).and_then(|_| own(Value::Bool(!short)))
                }
            }
            Expr::Bin(op, a, b) => binary(op, eval(a, this, old)?, eval(b, this, old)?),
        }
    }

    fn binary<'a>(op: &str, a: V<'_>, b: V<'_>) -> Option<V<'a>> {
        let (V::J(a), V::J(b)) = (a, b) else {
            return None;
        };
        let (a, b) = (a.as_ref(), b.as_ref());
        if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
            let n = match op {
                "+" => x.checked_add(y),
                "-" => x.checked_sub(y),
                "*" => x.checked_mul(y),
                "/" => x.checked_div(y),
                "%" => x.checked_rem(y),
                _ => None,
            };
            if let Some(n) = n {
                return own(Value::from(n));
            }
        }
        let order = match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            _ => None,
        };
        own(Value::Bool(match op {
            "==" => super::schema::json_eq(a, b),
            "!=" => !super::schema::json_eq(a, b),
            "<" => order?.is_lt(),
            "<=" => order?.is_le(),
            ">" => order?.is_gt(),
            ">=" => order?.is_ge(),
            _ => return None,
        }))
    }

    /// A Kubernetes quantity (`1Gi`, `500m`, `1e3`, `2.5M`) as a number.
    pub(super) fn quantity(s: &str) -> Option<f64> {
        let split = s
            .char_indices()
            .find(|(i, c)| {
                !(c.is_ascii_digit() || *c == '.' || ((*c == '+' || *c == '-') && *i == 0))
            })
            .map_or(s.len(), |(i, _)| i);
        let (num, suffix) = (s.get(..split)?, s.get(split..)?);
        let n: f64 = num.parse().ok()?;
        let bin = |p: i32| Some(1024f64.powi(p));
        let dec = |p: i32| Some(10f64.powi(p));
        let m = match suffix {
            "" => dec(0),
            "Ki" => bin(1),
            "Mi" => bin(2),
            "Gi" => bin(3),
            "Ti" => bin(4),
            "Pi" => bin(5),
            "Ei" => bin(6),
            "n" => dec(-9),
            "u" => dec(-6),
            "m" => dec(-3),
            "k" => dec(3),
            "M" => dec(6),
            "G" => dec(9),
            "T" => dec(12),
            "P" => dec(15),
            "E" => dec(18),
            e if e.starts_with(['e', 'E']) => dec(e.get(1..)?.parse().ok()?),
            _ => None,
        }?;
        Some(n * m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::{cel, pattern};
    use serde_json::{Value, json};

    /// Every pattern of the CRDs, with strings it must and must not match.
    #[rustfmt::skip]
    const PATTERNS: &[(&str, &[&str], &[&str])] = &[
        (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", &["valkey-test", "a.b-c.d", "0"], &["-bad", "Upper", "", "a..b", "a-"]),
        (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
            &["1Gi", "500m", "1.5G", "+3", ".5", "1e3", "2E-2", "10", "5."], &["", "1GB", "Gi", "1 Gi", "one", "1e"]),
        (r"^https?://[^\s]+$", &["http://minio.storage:9000", "https://x"], &["http://a b", "ftp://x", "http://"]),
        (r"^[^/].*[^/]$|^[^/]$", &["a/b", "a", "ab"], &["a/", "/a", "/", ""]),
        (r"^[-._a-zA-Z0-9]+$", &["pass_word.1", "-"], &["", "a b", "a/b"]),
        (r"^[A-Za-z0-9][A-Za-z0-9._-]*$", &["app.user-1", "A"], &["_x", "", "a b"]),
        ("ab{2,3}c", &["xabbc", "abbbc"], &["abc", "abbbbc"]),
    ];

    #[test]
    fn patterns_of_the_crds() {
        for (p, yes, no) in PATTERNS {
            assert!(
                yes.iter().all(|s| pattern::matches(p, s) == Some(true)),
                "{p}"
            );
            assert!(
                no.iter().all(|s| pattern::matches(p, s) == Some(false)),
                "{p}"
            );
        }
        let name = PATTERNS[0].0;
        assert_eq!(pattern::matches(name, &"a".repeat(2000)), Some(true));
        assert_eq!(
            pattern::matches(name, &format!("{}-", "a".repeat(2000))),
            Some(false)
        );
        assert_eq!(pattern::matches(r"\bword", "word"), None);
    }

    #[rustfmt::skip]
    fn cases() -> Vec<(&'static str, Value, Option<Value>, Option<bool>)> {
        let topology = "self.topology == 'Cluster' || (!has(self.shards) && !has(self.replicasPerShard))";
        let quorum = "!has(self.quorum) || self.quorum <= (has(self.replicas) ? self.replicas : 3)";
        let grow = "quantity(self).compareTo(quantity(oldSelf)) >= 0";
        vec![
            (topology, json!({"topology": "Cluster", "shards": 3}), None, Some(true)),
            (topology, json!({"topology": "Replication", "shards": 1}), None, Some(false)),
            (quorum, json!({"quorum": 4, "replicas": 5}), None, Some(true)),
            (quorum, json!({"quorum": 4}), None, Some(false)),
            ("self % 2 == 1", json!(4), None, Some(false)),
            (grow, json!("2Gi"), Some(json!("1Gi")), Some(true)),
            (grow, json!("512Mi"), Some(json!("1Gi")), Some(false)),
            (grow, json!("512Mi"), None, Some(true)),
            ("quantity(self).isGreaterThan(quantity('0'))", json!("0"), None, Some(false)),
            ("self == oldSelf", json!({"a": 1}), Some(json!({"a": 1.0})), Some(true)),
            // `||` decides on one known side even when the other errs.
            ("self.missing == 1 || true", json!({}), None, Some(true)),
            // A missing field is an evaluation error: cannot tell.
            ("self.topology == 'Cluster'", json!({}), None, None),
            // Outside the subset: cannot tell.
            ("self.all(x, x > 0)", json!([1]), None, None),
            ("self.size() > 1.5", json!("ab"), None, None),
        ]
    }

    #[test]
    fn cel_rules_of_the_crds() {
        for (rule, this, old, want) in cases() {
            assert_eq!(
                cel::check(rule, &this, old.as_ref()),
                want,
                "{rule} on {this}"
            );
        }
        assert_eq!(cel::quantity("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(cel::quantity("1.5k"), Some(1500.0));
        assert_eq!(cel::quantity("Gi"), None);
    }
}
