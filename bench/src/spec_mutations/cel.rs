//! A subset of CEL, enough for `x-kubernetes-validations` rules like the
//! CRDs': `self`/`oldSelf`, field selection, `has()`, `!`, `&&`, `||`,
//! comparisons, integer arithmetic, `? :`, and `quantity()` with
//! `isGreaterThan`/`isLessThan`/`compareTo`. Anything else (a float, a
//! macro, a function not listed, or a runtime error such as a missing
//! field) is "cannot tell".

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
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "%", "?", ":", "(", ")", ".", ",", "+", "-",
    "*", "/", "[", "]",
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
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '+' || *c == '-') && *i == 0)))
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
