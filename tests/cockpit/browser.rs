//! Headless Debian Chromium driven over the DevTools protocol by `cdp.mjs` (Node's built-in
//! WebSocket client, or its own small one on Debian 12's Node 18): one JSON command per line
//! in, one JSON answer per line out. Shared by tests/cockpit.rs and the system test
//! (tests/system/admin.rs). F2B_CDP_DEBUG=1 makes the driver echo each command on stderr.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Why the browser cannot run here (None: it can).
pub fn unavailable() -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt install chromium)"));
    }
    match Command::new("node").args(["-e", "0"]).output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is missing (apt install nodejs)".into()),
    }
}

/// `--experimental-websocket` where this Node knows it (20, 21; on 18 cdp.mjs brings its own
/// client, and 22 has one built in).
fn node_flags() -> Vec<&'static str> {
    let knows = Command::new("node")
        .args(["--experimental-websocket", "-e", "0"])
        .output()
        .is_ok_and(|o| o.status.success());
    if knows {
        vec!["--experimental-websocket"]
    } else {
        Vec::new()
    }
}

pub struct Browser {
    chromium: Child,
    driver: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
        Browser::start_in(None)
    }

    /// Chromium and its driver inside the named network namespace (`ip netns exec NS`).
    pub fn start_in(netns: Option<&str>) -> Browser {
        let exec = |prog: &str| match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, prog]);
                c
            }
            None => Command::new(prog),
        };
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromium.log");
        let mut chromium = exec(CHROMIUM)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            // Its own process group: the zygote and renderers go with it on drop.
            .process_group(0)
            .spawn()
            .expect("chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(at) = text.find("ws://") {
                break text[at..].split_whitespace().next().unwrap().to_string();
            }
            if let Some(st) = chromium.try_wait().unwrap() {
                panic!("chromium exited ({st}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "chromium gave no DevTools URL:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cockpit/cdp.mjs");
        let mut driver = exec("node")
            .args(node_flags())
            .arg(script)
            .arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node");
        let input = driver.stdin.take().unwrap();
        let output = BufReader::new(driver.stdout.take().unwrap());
        let mut b = Browser {
            chromium,
            driver,
            input,
            output,
            _profile: profile,
        };
        let hello = b.read();
        assert_eq!(hello["value"], "ready", "{hello}");
        b
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the DevTools driver exited");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver said {line:?}: {e}"))
    }

    /// Send one command; returns the answer (ok or not). Page exceptions fail the test.
    pub fn send(&mut self, cmd: Value) -> Value {
        writeln!(self.input, "{cmd}").unwrap();
        let answer = self.read();
        let errors = answer["errors"].as_array().cloned().unwrap_or_default();
        assert!(errors.is_empty(), "the page threw during {cmd}: {errors:?}");
        answer
    }

    /// Send one command that must succeed; returns its value.
    #[track_caller]
    pub fn ok(&mut self, cmd: Value) -> Value {
        let answer = self.send(cmd.clone());
        assert!(answer["ok"] == true, "{cmd} failed: {}", answer["error"]);
        answer["value"].clone()
    }

    pub fn goto(&mut self, url: &str) {
        self.ok(json!({"cmd": "goto", "url": url}));
    }

    /// Wait (at most 15 s) until the JavaScript expression is truthy in the page.
    #[track_caller]
    pub fn wait(&mut self, expr: &str) {
        self.ok(json!({"cmd": "wait", "expr": expr, "timeout_ms": 15000}));
    }

    pub fn eval(&mut self, expr: &str) -> Value {
        self.ok(json!({"cmd": "eval", "expr": expr}))
    }

    pub fn text(&mut self, selector: &str) -> String {
        let v = self.eval(&format!(
            "(document.querySelector({}) || {{innerText: ''}}).innerText",
            json!(selector)
        ));
        v.as_str().unwrap_or_default().to_string()
    }

    pub fn click(&mut self, selector: &str) {
        self.ok(json!({"cmd": "click", "selector": selector}));
    }

    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.ok(json!({"cmd": "type", "selector": selector, "text": text}));
    }

    pub fn screenshot(&mut self, path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        self.ok(json!({"cmd": "screenshot", "path": path}));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "{}", json!({"cmd": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.driver.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // SAFETY: kill(2) of the process group we created for chromium.
        unsafe { libc::kill(-(self.chromium.id() as i32), libc::SIGKILL) };
        let _ = self.chromium.wait();
    }
}

/// `[data-unban="ADDRESS"]` as a CSS selector.
pub fn unban_button(address: &str) -> String {
    format!("[data-unban=\"{address}\"]")
}
