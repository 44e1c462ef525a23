//! Actions (issue 16), checked from outside: the real f2bd bans from journal lines and its
//! actions reach real receivers in another network namespace — a webhook endpoint, a
//! program it runs, an SMTP server, an AbuseIPDB stand-in — within the limits the issue sets,
//! and nothing is lost when f2bd is killed while a receiver is down.

mod common;

use std::time::{Duration, Instant};

use common::*;
use f2b::engine::now_us;

/// The bound: from the failure that bans to the action.
const WITHIN: Duration = Duration::from_secs(2);

fn jail(actions: &str) -> String {
    format!(
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 2\nfindtime = \"1h\"\n\
         bantime = \"1h\"\nactions = [{actions}]\n"
    )
}

/// The "done when": a ban POSTs JSON naming the jail and the address to a webhook
/// and runs a command with them as arguments, both within 2 s, while nftables enforces it.
#[test]
fn a_ban_reaches_a_webhook_and_a_command_within_two_seconds() {
    if !root_and_tools_or_skip("a_ban_reaches_a_webhook_and_a_command_within_two_seconds") {
        return;
    }
    let pair = Pair::new();
    let hook = Receiver::start(Some(&pair.atk), &format!("{}:0", Pair::ATK4_B));
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("command.out");
    let config = format!(
        "{}[action.hook]\ntype = \"webhook\"\nurl = \"http://{}/f2b/ban\"\n\
         headers = {{ X-Team = \"ops\" }}\n\
         [action.run]\ntype = \"command\"\nevents = [\"ban\"]\n\
         command = [\"/bin/sh\", \"-c\", 'echo \"$0 $1 $F2B_EVENT $F2B_FAILURES\" >> {}', \"{{jail}}\", \"{{address}}\"]\n",
        jail("\"hook\", \"run\""),
        hook.addr,
        out.display()
    );
    let d = F2bd::with_config(&config)
        .firewall("nftables")
        .netns(&pair.srv)
        .start();
    let t0 = Instant::now();
    let t = now_us();
    d.journal(vec![fail(t, Pair::ATK4), fail(t + 1, Pair::ATK4)]);

    let req = hook.wait(1, WITHIN * 5).remove(0);
    let posted = req.at - t0;
    wait_for(WITHIN * 5, "the command's output", || {
        std::fs::read_to_string(&out).is_ok_and(|s| !s.is_empty())
    });
    // When its output was seen (at most the wait's poll interval late).
    let ran = t0.elapsed();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/f2b/ban")
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-team"), Some("ops"));
    let v: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        (
            v["event"].as_str(),
            v["jail"].as_str(),
            v["address"].as_str()
        ),
        (Some("ban"), Some("ssh"), Some(Pair::ATK4)),
        "{v}"
    );
    assert_eq!(v["failures"], 2);
    assert_eq!(v["lines"].as_array().unwrap().len(), 2);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("ssh {} ban 2\n", Pair::ATK4)
    );
    // The ban itself is enforced: the attacker's connects are dropped.
    pair.srv.run(|| {
        let _l = std::net::TcpListener::bind((Pair::SRV4, 2222)).unwrap();
        assert_eq!(
            connect(&pair.atk, Pair::ATK4, Pair::SRV4, 2222),
            Outcome::TimedOut
        );
        assert_eq!(
            connect(&pair.atk, Pair::ATK4_B, Pair::SRV4, 2222),
            Outcome::Connected
        );
    });
    eprintln!("webhook POST {posted:?} after the failures, command within {ran:?}");
    assert!(posted < WITHIN, "webhook after {posted:?}");
    assert!(ran < WITHIN, "command after {ran:?}");
    d.stop();
}
