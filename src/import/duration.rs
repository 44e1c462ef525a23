//! fail2ban's time expressions (`MyTime.str2seconds`): numbers with units, summed when
//! written side by side (`1d12h`, `1h 30m`), or combined with `+ - * /` and parentheses
//! (`1year-6mo`). Units (case-insensitive): `s`/`sec`/`second(s)`, `m`/`mm`/`min`/`minute(s)`,
//! `h`/`hh`/`hou`/`hour(s)`, `d`/`dd`/`da`/`day(s)`, `w`/`ww`/`wee`/`week(s)`,
//! `mo`/`mon`/`month(s)` (a twelfth of 365.25 days) and `y`/`yy`/`yea`/`year(s)` (365.25
//! days). A plain number is seconds; `-1` means permanent.

/// Seconds of one unit, by every spelling fail2ban accepts.
fn unit(word: &str) -> Option<f64> {
    const DAY: f64 = 86_400.0;
    const YEAR: f64 = (365.0 * 3.0 + 366.0) * DAY / 4.0;
    Some(match word.to_ascii_lowercase().as_str() {
        "s" | "ss" | "se" | "sec" | "second" | "seconds" => 1.0,
        "m" | "mm" | "mi" | "min" | "minute" | "minutes" => 60.0,
        "h" | "hh" | "ho" | "hou" | "hour" | "hours" => 3_600.0,
        "d" | "dd" | "da" | "day" | "days" => DAY,
        "w" | "ww" | "we" | "wee" | "week" | "weeks" => 7.0 * DAY,
        "mo" | "mon" | "month" | "months" => YEAR / 12.0,
        "y" | "yy" | "ye" | "yea" | "year" | "years" => YEAR,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let n: f64 = text[start..i]
                .parse()
                .map_err(|_| format!("{:?} is not a number", &text[start..i]))?;
            // Written side by side with the previous operand: added (`1h 30m`, `1d12h`).
            if matches!(toks.last(), Some(Tok::Num(_) | Tok::Close)) {
                toks.push(Tok::Op('+'));
            }
            toks.push(Tok::Num(n));
            // A unit right after the number (blanks allowed): multiply.
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let w = j;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j > w {
                let word = &text[w..j];
                let f = unit(word).ok_or_else(|| format!("unknown time unit {word:?}"))?;
                toks.push(Tok::Op('*'));
                toks.push(Tok::Num(f));
                i = j;
            }
        } else if "+-*/".contains(c) {
            toks.push(Tok::Op(c));
            i += 1;
        } else if c == '(' {
            if matches!(toks.last(), Some(Tok::Num(_) | Tok::Close)) {
                toks.push(Tok::Op('+'));
            }
            toks.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            toks.push(Tok::Close);
            i += 1;
        } else {
            return Err(format!("unexpected {c:?}"));
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn expr(&mut self) -> Result<f64, String> {
        let mut v = self.term()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.term()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }
    fn term(&mut self) -> Result<f64, String> {
        let mut v = self.factor()?;
        while let Some(Tok::Op(op @ ('*' | '/'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.factor()?;
            if op == '/' && r == 0.0 {
                return Err("division by zero".into());
            }
            v = if op == '*' { v * r } else { v / r };
        }
        Ok(v)
    }
    fn factor(&mut self) -> Result<f64, String> {
        match self.peek().cloned() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(-self.factor()?)
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.factor()
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let v = self.expr()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(v)
            }
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

/// Seconds of a fail2ban time expression (may be negative: `-1` is permanent).
pub fn str2seconds(text: &str) -> Result<f64, String> {
    let toks = tokenize(text).map_err(|e| format!("time {text:?}: {e}"))?;
    if toks.is_empty() {
        return Err(format!("time {text:?} is empty"));
    }
    let mut p = Parser { toks, pos: 0 };
    let v = p.expr().map_err(|e| format!("time {text:?}: {e}"))?;
    if p.pos != p.toks.len() {
        return Err(format!(
            "time {text:?}: unexpected text after the expression"
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_time_expressions() {
        for (text, secs) in [
            ("600", 600.0),
            ("10m", 600.0),
            ("1h 30m", 5_400.0),
            ("1d12h", 129_600.0),
            ("0d 1h 30m", 5_400.0),
            ("1hour+30min", 5_400.0),
            ("2 weeks", 1_209_600.0),
            ("1w", 604_800.0),
            ("-1", -1.0),
            ("1mo", 2_629_800.0),
            ("1year-6mo", 15_778_800.0),
            ("6 months", 15_778_800.0),
            ("5M", 300.0),
            ("1 h", 3_600.0),
            ("(1h+1h)*2", 14_400.0),
        ] {
            assert_eq!(str2seconds(text).unwrap(), secs, "{text}");
        }
        for bad in ["", "10x", "1h)", "abc", "1/0"] {
            assert!(str2seconds(bad).is_err(), "{bad}");
        }
    }
}
