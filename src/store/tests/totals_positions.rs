//! Per-jail totals and per-source reader positions.

use super::*;

/// "BANNED 1, TOTAL BANNED 0" after a restart: totals are stored as they grow.
#[test]
fn totals_add_up_across_commits_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let t = |failed, banned, ignored| Totals {
        failed,
        banned,
        ignored,
    };
    {
        let mut s = Store::open(dir.path()).unwrap();
        s.commit(&Commit {
            totals_added: vec![("sshd".into(), t(5, 1, 0)), ("web".into(), t(0, 0, 3))],
            ..Commit::default()
        })
        .unwrap();
        s.commit_many(
            [
                &Commit {
                    totals_added: vec![("sshd".into(), t(3, 0, 1))],
                    ..Commit::default()
                },
                &Commit {
                    totals_added: vec![("sshd".into(), t(2, 1, 0))],
                    ..Commit::default()
                },
            ],
            Durability::Normal,
        )
        .unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(
        owned(&s.load(0).unwrap()).totals,
        vec![("sshd".into(), t(10, 2, 1)), ("web".into(), t(0, 0, 3))]
    );
}

#[test]
fn positions_by_source_and_the_cursor_as_the_journal_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.load(0).unwrap().cursor, None);
    let c = |x: Option<&str>| Commit {
        cursor: x.map(str::to_string),
        ..Commit::default()
    };
    let p = |src: &str, v: Option<&str>| Commit {
        positions: vec![(src.to_string(), v.map(str::to_string))],
        ..Commit::default()
    };
    s.commit(&c(Some("one"))).unwrap();
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("one"));
    // None leaves it (and an empty commit writes nothing at all).
    let before = s.transactions();
    s.commit(&c(None)).unwrap();
    assert_eq!(s.transactions(), before);
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("one"));
    s.commit(&c(Some("two"))).unwrap();
    s.commit_many(
        [
            &c(Some("three")),
            &p("file:/a", Some("a1")),
            &c(Some("four")),
            &p("file:/b", Some("b1")),
            &p("file:/a", Some("a2")),
            &c(None),
        ],
        Durability::Normal,
    )
    .unwrap();
    let snap = s.load(0).unwrap();
    assert_eq!(snap.cursor.as_deref(), Some("four"));
    let want = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        snap.positions,
        want(&[("file:/a", "a2"), ("file:/b", "b1"), ("journal", "four")])
    );
    // The journal entry is the cursor, either way it is written; None deletes a source.
    s.commit_many(
        [
            &p(JOURNAL_POSITION, Some("five")),
            &p("file:/b", None),
            &p("file:/gone", None),
        ],
        Durability::Normal,
    )
    .unwrap();
    let snap = s.load(0).unwrap();
    assert_eq!(snap.cursor.as_deref(), Some("five"));
    assert_eq!(
        snap.positions,
        want(&[("file:/a", "a2"), ("journal", "five")])
    );
    // In one commit, `cursor` is applied after `positions`.
    s.commit(&Commit {
        cursor: Some("six".into()),
        positions: vec![(JOURNAL_POSITION.into(), Some("ignored".into()))],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(s.load(0).unwrap().cursor.as_deref(), Some("six"));
    let rows: i64 = raw(dir.path())
        .query_row("SELECT count(*) FROM positions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}
