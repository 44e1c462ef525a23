//! What an administrator does beyond the command line, on the booted container of
//! `container.rs`:
//!
//! - [`cockpit_page`]: log in to Debian's cockpit-ws on port 9090 with a real PAM login
//!   (Chromium, headless, in the second client's network namespace), see the ban of a real sshd
//!   attacker, unban it from the page (the attacker connects again) and ban it again (it cannot),
//!   as a user whose group a polkit rule grants `org.f2b.manage`; a user without it sees the
//!   same page and gets "not authorized" in place, and nothing changes.
//! - [`disabled_f2b_stays_down_on_dbus_calls`] (issue 10.4): after `systemctl disable --now f2b`
//!   a call to org.f2b, even from `nobody`, does not start f2bd again; once re-enabled, D-Bus
//!   activation works again.

use std::path::PathBuf;

use serde_json::json;
use std::time::{Duration, Instant};

use crate::browser::{unban_button, Browser};
use crate::container::{connects, step, text, Container, ATTACKER, SRV_A, SRV_B};

/// The polkit rule an admin writes: members of f2badmin may manage f2b.
const RULE: &str = "polkit.addRule(function(action, subject) {\n    \
    if (action.id == \"org.f2b.manage\" && subject.isInGroup(\"f2badmin\"))\n        \
    return polkit.Result.YES;\n});\n";

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/system-test")
}

/// Log in to cockpit-ws (PAM, through cockpit-session) as the login page does it: a request
/// to /cockpit/login with the user's password, which sets the session cookie; then open the
/// f2b page (`fragment`: its view). A refused password fails the test.
fn login(b: &mut Browser, user: &str, password: &str, fragment: &str) {
    let base = format!("http://{SRV_B}:9090");
    b.goto(&format!("{base}/"));
    b.wait("document.querySelector('#login-user-input')");
    let status = b.eval(&format!(
        "fetch('/cockpit/login', {{headers: {{Authorization: 'Basic ' + btoa({})}}}}).then(r => r.status)",
        json!(format!("{user}:{password}"))
    ));
    assert_eq!(status, json!(200), "{user}'s login was refused");
    // Until cockpit-ws has set the session cookie, every path answers with the login page;
    // a fresh session's first page may reload itself once while it connects.
    let page = format!("{base}/cockpit/@localhost/f2b/index.html{fragment}");
    let deadline = Instant::now() + Duration::from_secs(60);
    'open: loop {
        b.ok(json!({"cmd": "newtab"}));
        b.send(json!({"cmd": "goto", "url": page}));
        for _ in 0..3 {
            let r = b.send(json!({
                "cmd": "wait",
                "expr": "document.body.dataset.loaded === 'yes'",
                "timeout_ms": 10000,
            }));
            if r["ok"] == true {
                break 'open;
            }
            if !r["error"].as_str().unwrap_or("").contains("navigated") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{user} is not logged in: {}",
            b.text("body")
        );
    }
}

/// Wait until `ns` can (or cannot) connect to the container's sshd on `addr`.
fn wait_connects(ns: &str, addr: &str, want: bool, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while connects(ns, addr) != want {
        assert!(Instant::now() < deadline, "{why}");
    }
}

pub fn cockpit_page(c: &Container, t0: Instant) {
    if let Some(why) = crate::browser::unavailable() {
        println!("SKIP the Cockpit part of the system test: {why}");
        return;
    }
    let atk = &c.netns[1];
    c.ok(
        "test -f /usr/share/cockpit/f2b/manifest.json && test -f /usr/share/cockpit/f2b/index.html",
    );
    c.ok(&format!(
        "groupadd f2badmin && useradd -m -s /bin/sh -G f2badmin alice && \
         useradd -m -s /bin/sh bob && \
         printf 'alice:Alice-pw-1\\nbob:Bob-pw-1\\n' | chpasswd && \
         printf '%s' '{RULE}' > /etc/polkit-1/rules.d/50-f2b-admins.rules && \
         mkdir -p /etc/cockpit && \
         printf '[WebService]\\nAllowUnencrypted = true\\n' > /etc/cockpit/cockpit.conf && \
         systemctl restart polkit && systemctl enable --now cockpit.socket"
    ));
    c.wait_for(
        "ss -Hltn 'sport = :9090' | grep -q 9090",
        20,
        "cockpit.socket does not listen on 9090",
    );
    step("cockpit-ws on 9090, users alice (f2badmin) and bob", t0);

    // Bob may read but not change.
    let mut b = Browser::start_in(Some(&c.netns[2]));
    login(&mut b, "bob", "Bob-pw-1", "#/bans");
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button(ATTACKER)
    ));
    b.click(&unban_button(ATTACKER));
    b.wait(&format!(
        "document.querySelector('tr[data-address=\"{ATTACKER}\"]').innerText.includes('not authorized')"
    ));
    b.screenshot(&shots().join("cockpit-bob.png"));
    drop(b);
    assert!(
        !connects(atk, SRV_A),
        "bob's refused unban let the attacker in"
    );
    step("bob: the ban is shown, his unban is not authorized", t0);

    // Alice unbans and bans again.
    let mut b = Browser::start_in(Some(&c.netns[2]));
    login(&mut b, "alice", "Alice-pw-1", "#/bans");
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button(ATTACKER)
    ));
    b.screenshot(&shots().join("cockpit-alice.png"));
    b.click(&unban_button(ATTACKER));
    b.wait(&format!(
        "!document.querySelector('{}')",
        unban_button(ATTACKER)
    ));
    wait_connects(atk, SRV_A, true, "unbanned from the page but still blocked");
    step(
        "alice: unbanned from the page, the attacker connects again",
        t0,
    );
    b.type_into("#ban-address", ATTACKER);
    b.click("#ban-submit");
    b.wait(&format!(
        "document.querySelector('{}')",
        unban_button(ATTACKER)
    ));
    wait_connects(atk, SRV_A, false, "banned from the page but still connects");
    drop(b);
    let log = c.ok("journalctl -u f2b -o cat --no-pager");
    assert!(log.contains(&format!("Unban {ATTACKER}")), "{log}");
    step("alice: banned from the page, the attacker is blocked", t0);
    // Cockpit is done: its sessions and user managers would only slow the power-off down.
    c.sh("systemctl stop cockpit.socket cockpit.service; loginctl terminate-user alice bob");
}

pub fn disabled_f2b_stays_down_on_dbus_calls(c: &Container, t0: Instant) {
    const CALL: &str = "setpriv --reuid=65534 --regid=65534 --clear-groups \
                        busctl call org.f2b /org/f2b org.f2b.Manager1 ListJails";
    c.ok("systemctl disable --now f2b.service");
    let out = c.sh(CALL);
    println!(
        "a call to a disabled f2b: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        !out.status.success(),
        "the call was answered by a disabled f2b"
    );
    // The bus asks systemd for the alias, which exists only while f2b.service is enabled.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dbus-org.f2b.service not found"),
        "{}",
        text(&out)
    );
    assert_eq!(
        c.sh_text("systemctl is-active f2b.service").trim(),
        "inactive",
        "a D-Bus call started the disabled f2b"
    );
    c.ok("systemctl enable --now f2b.service && systemctl stop f2b.service");
    let jails = c.ok(CALL);
    assert!(jails.contains("sshd"), "{jails}");
    c.ok("systemctl is-active -q f2b.service");
    step("D-Bus activation only while f2b.service is enabled", t0);
}
