//! The import report: what was imported as it was, mapped to an f2b equivalent, translated
//! into new f2b files, or not imported — each with the reason and where it was written.

use std::fmt::Write as _;

use crate::location::Location;

/// What became of one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Carried over as it is.
    Imported,
    /// Carried over to an f2b equivalent that differs in name or detail.
    Mapped,
    /// Rewritten into a new f2b file (a filter, an action).
    Translated,
    /// Not carried over.
    NotImported,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Imported => "Imported",
            Kind::Mapped => "Mapped",
            Kind::Translated => "Translated",
            Kind::NotImported => "Not imported",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    /// `jail sshd`, `filter myapp`, `ban 192.0.2.1 in sshd`, …
    pub subject: String,
    pub loc: Option<Location>,
    pub msg: String,
    /// Something enabled in fail2ban that f2b will not do (makes the exit status 1).
    pub lost: bool,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub items: Vec<Item>,
    /// Summary lines printed at the end.
    pub summary: Vec<String>,
}

impl Report {
    pub fn add(
        &mut self,
        kind: Kind,
        subject: impl Into<String>,
        loc: Option<&Location>,
        msg: impl Into<String>,
    ) {
        self.items.push(Item {
            kind,
            subject: subject.into(),
            loc: loc.cloned(),
            msg: msg.into(),
            lost: false,
        });
    }

    /// Something enabled that is not carried over.
    pub fn lost(
        &mut self,
        subject: impl Into<String>,
        loc: Option<&Location>,
        msg: impl Into<String>,
    ) {
        self.items.push(Item {
            kind: Kind::NotImported,
            subject: subject.into(),
            loc: loc.cloned(),
            msg: msg.into(),
            lost: true,
        });
    }

    /// Whether anything enabled could not be carried over.
    pub fn failed(&self) -> bool {
        self.items.iter().any(|i| i.lost)
    }

    /// The report as text, grouped by kind.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for kind in [
            Kind::Imported,
            Kind::Mapped,
            Kind::Translated,
            Kind::NotImported,
        ] {
            let mut items: Vec<&Item> = self.items.iter().filter(|i| i.kind == kind).collect();
            // What holds for every jail ([DEFAULT]) first.
            items.sort_by_key(|i| i.subject != "[DEFAULT]");
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{}:", kind.title());
            for i in items {
                let mark = if i.lost { "!" } else { " " };
                let _ = write!(s, " {mark} {}", i.subject);
                if let Some(l) = &i.loc {
                    let _ = write!(s, " ({l})");
                }
                let _ = writeln!(s, ": {}", i.msg);
            }
        }
        for l in &self.summary {
            let _ = writeln!(s, "{l}");
        }
        if self.failed() {
            let n = self.items.iter().filter(|i| i.lost).count();
            let _ = writeln!(
                s,
                "{n} thing(s) marked ! were enabled in fail2ban and are not carried over: exit status 1"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_marks_what_is_lost() {
        let mut r = Report::default();
        let l = Location::new("jail.local", 4);
        r.add(
            Kind::Mapped,
            "jail sshd",
            Some(&l),
            "mode extra → aggressive",
        );
        r.add(Kind::Imported, "jail sshd", None, "as is");
        assert!(!r.failed());
        r.lost("jail app", Some(&l), "look-around");
        assert!(r.failed());
        let t = r.render();
        let imported = t.find("Imported:").unwrap();
        let mapped = t.find("Mapped:").unwrap();
        assert!(imported < mapped, "{t}");
        assert!(t.contains(" ! jail app (jail.local:4): look-around"), "{t}");
        assert!(t.contains("exit status 1"), "{t}");
    }
}
