//! The outbox seam (issues 16, 17): messages about bans are written with the decision,
//! delivered once the firewall enforced the ban, and survive a restart; a ban that never
//! happened sends nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use f2b::outbox::{Deliverer, Delivery, Notice, NoticeEvent, Sink};
use f2b::source::{JournalSpec, StartAt};
use f2b::store::StoreHandle;

/// A sink that remembers what it was told.
#[derive(Default)]
struct Collect(Mutex<Vec<Notice>>);

struct Named(&'static str, Arc<Collect>);

impl Sink for Named {
    fn name(&self) -> &str {
        self.0
    }
    fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
        Box::pin(async move {
            self.1 .0.lock().unwrap().push(n.clone());
            Ok(())
        })
    }
}

const CFG: &str = r#"
[jail.ssh]
enabled = true
filter = "testssh"
maxretry = 2
findtime = "1h"
bantime = "2s"
actions = ["hook"]
# The test hands the engine its own sink of this name.
[action.hook]
type = "command"
command = ["/bin/true"]
"#;

async fn wait_for_notices(c: &Collect, n: usize) -> Vec<Notice> {
    for _ in 0..200 {
        if c.0.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.0.lock().unwrap().clone()
}

#[tokio::test]
async fn a_ban_and_its_expiry_reach_the_jails_actions_once_enforced() {
    // Filters compile first (seconds in a debug build): the 2 s ban must still run when read.
    let settings = settings(CFG);
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let t = f2b::engine::now_us();
    append(
        dir.path(),
        "a.journal",
        (0..2).map(|i| fail(t + i, "198.51.100.5")).collect(),
    );
    let (store, snap) = StoreHandle::spawn(state.path()).unwrap();
    let got = Arc::new(Collect::default());
    let outbox = Deliverer::spawn(
        vec![Arc::new(Named("hook", got.clone()))],
        Some(store.clone()),
    );
    let mut r = start_edited(
        settings,
        JournalSpec::Directory(dir.path().to_path_buf()),
        StartAt::Head,
        true,
        None,
        Some((store, snap)),
        move |o| o.outbox = Some(outbox),
    );
    assert_eq!(r.next_ban(10).await.1, "198.51.100.5");
    let notices = wait_for_notices(&got, 2).await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    let (ban, unban) = (&notices[0], &notices[1]);
    assert_eq!(
        (ban.event, ban.jail.as_str(), ban.address.as_str()),
        (NoticeEvent::Ban, "ssh", "198.51.100.5")
    );
    assert_eq!(
        (ban.failures, ban.bantime, ban.bancount, ban.origin.as_str()),
        (2, 2, 1, "local")
    );
    assert_eq!(ban.lines.len(), 2);
    assert_eq!(unban.event, NoticeEvent::Unban);
    r.shutdown().await;
}

/// A crash between the decision's commit and the delivery: at the next start the message
/// of the (still active) ban is released and delivered.
#[tokio::test]
async fn a_held_message_of_an_active_ban_is_delivered_after_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    append(
        dir.path(),
        "a.journal",
        vec![ssh(f2b::engine::now_us(), "hello")],
    );
    let now = f2b::engine::now_us();
    let notice = Notice {
        event: NoticeEvent::Ban,
        jail: "ssh".into(),
        address: "203.0.113.8".into(),
        prefix: false,
        failures: 2,
        bantime: 3600,
        bancount: 1,
        end_us: now + 3_600_000_000,
        host: "test".into(),
        time_us: now,
        origin: "local".into(),
        lines: vec![],
    };
    {
        let mut s = f2b::store::Store::open(state.path()).unwrap();
        let c = f2b::store::Commit {
            bans_added: vec![f2b::store::StoredBan {
                jail: "ssh".into(),
                net: "203.0.113.8/32".parse().unwrap(),
                start_us: now,
                end_us: Some(now + 3_600_000_000),
                count: 1,
                failures: 2,
                origin: f2b::store::Origin::Local,
            }],
            outbox_added: vec![
                f2b::store::OutboxRow {
                    id: 7,
                    sink: "hook".into(),
                    created_us: now,
                    ready: false,
                    attempts: 0,
                    next_us: 0,
                    payload: serde_json::to_string(&notice).unwrap(),
                },
                // A held message of a ban that is not there: it never happened.
                f2b::store::OutboxRow {
                    id: 8,
                    sink: "hook".into(),
                    created_us: now,
                    ready: false,
                    attempts: 0,
                    next_us: 0,
                    payload: serde_json::to_string(&Notice {
                        address: "203.0.113.9".into(),
                        ..notice.clone()
                    })
                    .unwrap(),
                },
            ],
            ..Default::default()
        };
        s.commit(&c).unwrap();
        s.close().unwrap();
    }
    let (store, snap) = StoreHandle::spawn(state.path()).unwrap();
    assert_eq!(snap.outbox.len(), 2);
    let got = Arc::new(Collect::default());
    let outbox = Deliverer::spawn(
        vec![Arc::new(Named("hook", got.clone()))],
        Some(store.clone()),
    );
    let r = start_edited(
        settings(CFG),
        JournalSpec::Directory(dir.path().to_path_buf()),
        StartAt::Tail,
        true,
        None,
        Some((store.clone(), snap)),
        move |o| o.outbox = Some(outbox),
    );
    let notices = wait_for_notices(&got, 1).await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].address, "203.0.113.8");
    r.shutdown().await;
    // Both rows are gone from the outbox: one delivered, one removed.
    let snap = store.load(f2b::engine::now_us()).await.unwrap();
    assert!(snap.outbox.is_empty(), "{:?}", snap.outbox);
}
