//! Tests of `[action.NAME]`.

use super::*;
use crate::config::{load_str, LoadOptions};

fn opts() -> LoadOptions {
    LoadOptions {
        config: "/nonexistent/f2b.toml".into(),
        no_system_filters: true,
        ..LoadOptions::default()
    }
}

fn load(text: &str) -> Result<crate::config::Settings, String> {
    load_str("/etc/f2b/f2b.toml", text, &opts()).map_err(|e| e.to_string())
}

#[test]
fn the_keys_list_is_the_tables_fields() {
    let fields: Vec<&str> = (ACTION_FIELDS.iter())
        .map(|f| if *f == "kind" { "type" } else { f })
        .collect();
    assert_eq!(fields, ACTION_KEYS);
}

#[test]
fn every_type_validates_with_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "s3cret-key\n").unwrap();
    let hdr = dir.path().join("headers");
    std::fs::write(&hdr, "# comment\nAuthorization: Bearer abc\n").unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(&creds, "alice:pa:ss\n").unwrap();
    let text = format!(
        r#"
[action.hook]
type = "webhook"
url = "https://hooks.example.org/x"
headers = {{ X-Team = "ops" }}
headers_file = "{hdr}"
body = '{{"text": "{{jail}}: {{address}}"}}'
timeout = "5s"
[action.run]
type = "command"
command = ["/usr/local/bin/notify", "{{jail}}", "{{address}}"]
events = ["ban"]
[action.mail]
type = "mail"
server = "smtp.example.org"
from = "f2b <f2b@example.org>"
to = ["ops@example.org"]
credentials_file = "{creds}"
digest = "10m"
[action.report]
type = "abuseipdb"
key_file = "{key}"
categories = {{ sshd = [18, 22] }}
[jail.sshd]
enabled = true
actions = ["hook", "run", "mail", "report"]
"#,
        hdr = hdr.display(),
        creds = creds.display(),
        key = key.display()
    );
    let s = load(&text).unwrap();
    assert_eq!(s.jail("sshd").unwrap().actions.len(), 4);
    let hook = &s.actions["hook"];
    assert_eq!(hook.timeout, Duration::from_secs(5));
    assert_eq!(hook.events, [NoticeEvent::Ban, NoticeEvent::Unban]);
    let ActionKind::Webhook {
        method,
        headers,
        secret_headers,
        ..
    } = &hook.kind
    else {
        panic!("{hook:?}")
    };
    assert_eq!((method.as_str(), headers.len()), ("POST", 1));
    assert_eq!(
        parse_header_lines(secret_headers.as_ref().unwrap().expose()).unwrap(),
        [("Authorization".to_string(), "Bearer abc".to_string())]
    );
    assert_eq!(s.actions["run"].events, [NoticeEvent::Ban]);
    let ActionKind::Mail {
        port, tls, digest, ..
    } = &s.actions["mail"].kind
    else {
        panic!()
    };
    assert_eq!(
        (*port, *tls, *digest),
        (587, MailTls::StartTls, Duration::from_secs(600))
    );
    let ActionKind::AbuseIpdb {
        key,
        categories,
        url,
    } = &s.actions["report"].kind
    else {
        panic!()
    };
    assert_eq!(key.expose(), "s3cret-key");
    assert_eq!(
        (categories["sshd"].clone(), url.as_str()),
        (vec![18, 22], ABUSEIPDB_URL)
    );
    // Secrets never show in the settings' debug output.
    let shown = format!("{s:?}");
    assert!(!shown.contains("s3cret") && !shown.contains("Bearer abc") && !shown.contains("pa:ss"));
}

#[test]
fn bad_actions_are_named_with_their_line() {
    let e = load(
        "[action.a]\ntype = \"pager\"\n[action.b]\ntype = \"webhook\"\nurl = \"ftp://x\"\n\
         command = [\"/bin/true\"]\n[action.c]\ntype = \"command\"\ncommand = [\"notify\", \"{adress}\"]\n\
         [action.d]\ntype = \"abuseipdb\"\nkey_file = \"/nonexistent/abuse.key\"\n\
         [action.e]\ntype = \"webhook\"\nurll = \"http://x\"\n\
         [jail.sshd]\nenabled = true\nactions = [\"hok\"]\n",
    )
    .unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "/etc/f2b/f2b.toml:2: action a: type: unknown type \"pager\"; the types are webhook, command, mail, abuseipdb",
            "/etc/f2b/f2b.toml:5: action b: url: scheme \"ftp\": only http and https",
            "/etc/f2b/f2b.toml:6: action b: command: does not apply to a webhook action",
            "/etc/f2b/f2b.toml:9: action c: command: \"notify\": the program must be an absolute path (no shell, no PATH lookup)",
            "/etc/f2b/f2b.toml:9: action c: command: unknown field {adress}; the fields are {event} {jail} {address} {ip} {prefix} {failures} {bantime} {bancount} {end_us} {host} {hostname} {time_us} {time} {origin} {lines}",
            "/etc/f2b/f2b.toml:12: action d: key_file: cannot read /nonexistent/abuse.key: No such file or directory (os error 2)",
            "/etc/f2b/f2b.toml:13: [action.e]: url is required for this type",
            "/etc/f2b/f2b.toml:15: unknown key \"urll\" in [action.e]; did you mean \"url\"?",
            "/etc/f2b/f2b.toml:18: jail sshd: actions: no [action.hok] is configured",
        ],
        "{e}"
    );
    assert!(
        load("[action.fleet]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n")
            .unwrap_err()
            .contains("reserved")
    );
}
