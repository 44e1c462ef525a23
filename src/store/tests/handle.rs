//! The store thread: round trips, group commit in order, a failing commit alone, recovery.

use super::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn handle_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (h, snap) = StoreHandle::spawn(dir.path()).unwrap();
        assert_eq!(snap, Snapshot::default());
        h.commit(Commit {
            cursor: Some("c1".into()),
            bans_added: vec![ban("sshd", "192.0.2.1/32", 1, Some(100), 1, 3)],
            history_added: vec![hist("192.0.2.1/32", "sshd", 1)],
            failures_added: vec![("sshd".into(), net("192.0.2.2/32"), 5)],
            ..Commit::default()
        })
        .await
        .unwrap();
        h.commit_durable(Commit {
            bans_added: vec![ban("sshd", "192.0.2.3/32", 2, None, 1, 0)],
            history_added: vec![hist("192.0.2.3/32", "sshd", 2)],
            ..Commit::default()
        })
        .await
        .unwrap();
        assert_eq!(
            h.history_of(net("192.0.2.1/32")).await.unwrap(),
            vec![("sshd".to_string(), 1)]
        );
        assert_eq!(
            h.history_detail(net("192.0.2.0/24")).await.unwrap().len(),
            2
        );
        assert_eq!(h.load(0).await.unwrap().bans.len(), 2);
        let stats = h.purge(2, 100).await.unwrap();
        assert_eq!((stats.history, stats.bans, stats.failures), (1, 1, 0));
        assert_eq!(
            h.stats(),
            HandleStats {
                commits: 2,
                transactions: 3
            }
        );
        let other = h.clone();
        h.close().await.unwrap();
        let err = other.commit(Commit::default()).await.unwrap_err();
        assert!(matches!(err, StoreError::WorkerGone { .. }), "{err}");
        assert!(err.to_string().contains("f2b.sqlite"), "{err}");
    });
    let (_h, snap) = StoreHandle::spawn_with(dir.path(), Durability::Normal, 0).unwrap();
    assert_eq!(snap.cursor.as_deref(), Some("c1"));
    assert_eq!(
        owned(&snap).bans,
        vec![ban("sshd", "192.0.2.3/32", 2, None, 1, 0)]
    );
}

#[test]
fn handle_groups_concurrent_commits_in_order() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (h, _) = StoreHandle::spawn(dir.path()).unwrap();
        // Sent back to back: add, remove, add-again of one ban; the last cursor wins.
        let b = |c: u32| ban("j", "192.0.2.1/32", 1, None, c, 1);
        let commits = vec![
            Commit {
                cursor: Some("1".into()),
                bans_added: vec![b(1)],
                ..Commit::default()
            },
            Commit {
                cursor: Some("2".into()),
                bans_removed: vec![("j".into(), net("192.0.2.1/32"))],
                ..Commit::default()
            },
            Commit {
                cursor: Some("3".into()),
                bans_added: vec![b(3)],
                ..Commit::default()
            },
            Commit {
                bans_added: vec![ban("j", "192.0.2.2/32", 1, None, 1, 1)],
                ..Commit::default()
            },
            Commit {
                bans_removed: vec![("j".into(), net("192.0.2.2/32"))],
                ..Commit::default()
            },
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for c in commits {
            let h = h.clone();
            // Spawned in order on a current-thread runtime: sent in order.
            tasks.spawn(async move { h.commit(c).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let snap = h.load(0).await.unwrap();
        assert_eq!(snap.cursor.as_deref(), Some("3"));
        assert_eq!(owned(&snap).bans, vec![b(3)]);

        // Many at once: all written, in fewer transactions.
        let before = h.stats();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..500u32 {
            let h = h.clone();
            tasks.spawn(async move {
                h.commit(Commit {
                    cursor: Some(i.to_string()),
                    bans_added: vec![StoredBan {
                        jail: "many".into(),
                        net: IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
                            0x0a00_0000 + i,
                        ))),
                        start_us: 1,
                        end_us: None,
                        count: i,
                        failures: 1,
                        origin: Origin::Local,
                    }],
                    ..Commit::default()
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let after = h.stats();
        assert_eq!(after.commits - before.commits, 500);
        assert!(after.transactions - before.transactions < 500, "{after:?}");
        let snap = h.load(0).await.unwrap();
        assert_eq!(snap.bans.len(), 501);
        assert_eq!(snap.cursor.as_deref(), Some("499"));
    });
}

#[test]
fn a_failing_commit_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw(dir.path())
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON bans WHEN NEW.jail = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();
    rt().block_on(async {
        let (h, _) = StoreHandle::spawn(dir.path()).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, jail) in ["a", "poison", "b"].into_iter().enumerate() {
            let h = h.clone();
            tasks.spawn(async move {
                let r = h
                    .commit(Commit {
                        cursor: Some(i.to_string()),
                        bans_added: vec![ban(jail, "192.0.2.1/32", 1, None, 1, 1)],
                        ..Commit::default()
                    })
                    .await;
                (jail, r)
            });
        }
        while let Some(r) = tasks.join_next().await {
            let (jail, r) = r.unwrap();
            if jail == "poison" {
                let e = r.unwrap_err();
                assert!(
                    matches!(
                        e,
                        StoreError::Sqlite {
                            what: "cannot commit",
                            ..
                        }
                    ),
                    "{e}"
                );
                assert!(e.to_string().contains("poisoned"), "{e}");
            } else {
                r.unwrap();
            }
        }
        let snap = h.load(0).await.unwrap();
        let jails: Vec<_> = snap.bans.iter().map(|b| snap.jail(b.jail)).collect();
        assert_eq!(jails, vec!["a", "b"]);
        assert_eq!(snap.cursor.as_deref(), Some("2"));
        assert_eq!(h.stats().commits, 2);
    });
}

/// Damage found by a commit through the handle: the caller gets the distinct error, asks for
/// recovery, and the following commits go to the fresh database.
#[test]
fn handle_recovers_from_damage_found_by_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path()).unwrap();
        s.commit(&Commit {
            bans_added: (0..2000u32)
                .map(|i| StoredBan {
                    net: IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(i))),
                    ..ban("j", "0.0.0.0/32", 1, None, 1, 1)
                })
                .collect(),
            ..Commit::default()
        })
        .unwrap();
        s.close().unwrap();
    }
    rt().block_on(async {
        let (h, snap) = StoreHandle::spawn(dir.path()).unwrap();
        assert_eq!(snap.bans.len(), 2000);
        // Damage every page but the schema's while the store runs.
        let path = dir.path().join(DB_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        std::os::unix::fs::FileExt::write_all_at(
            &std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
            &vec![0xFF; (len - 4096) as usize],
            4096,
        )
        .unwrap();
        // Drop the cached pages: a second connection's write makes the store re-read.
        raw(dir.path())
            .execute_batch("PRAGMA user_version = 3")
            .unwrap();
        let err = h
            .commit(Commit {
                bans_added: vec![ban("j", "192.0.2.1/32", 1, None, 1, 1)],
                ..Commit::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::CorruptDatabase { .. }), "{err}");
        let rec = h.recover(err).await.unwrap();
        assert!(rec.moved_to.exists());
        h.commit(Commit {
            bans_added: vec![ban("j", "192.0.2.1/32", 1, None, 1, 1)],
            ..Commit::default()
        })
        .await
        .unwrap();
        assert_eq!(h.load(0).await.unwrap().bans.len(), 1);
    });
}
