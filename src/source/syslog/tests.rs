use super::*;

fn parser() -> SyslogParser {
    let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
    SyslogParser::new(TimeZone::UTC, now)
}

fn ts(s: &str) -> u64 {
    micros(s.parse::<Timestamp>().unwrap())
}

#[test]
fn rfc3164_with_space_padded_day() {
    let l = parser().parse(
        "Dec  1 10:00:00 web1 sshd[812]: Failed password for root from 192.0.2.9 port 22 ssh2",
    );
    assert_eq!(l.ident, Some("sshd"));
    assert_eq!(l.pid, Some(812));
    assert_eq!(l.host, Some("web1"));
    assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
    assert!(l.message.starts_with("Failed password"));
}

#[test]
fn rfc3164_year_rolls_back_for_future_dates() {
    // Late December lines read on 2 December are last year's.
    let l = parser().parse("Dec 28 23:59:59 h cron[1]: x");
    assert_eq!(l.time_us, Some(ts("2025-12-28T23:59:59Z")));
    let l = parser().parse("Dec 03 00:00:01 h cron[1]: x");
    assert_eq!(l.time_us, Some(ts("2026-12-03T00:00:01Z")));
}

#[test]
fn rsyslog_iso_and_short_iso() {
    let l = parser().parse("2026-12-01T10:00:00.123456+01:00 mx postfix/smtpd[44]: lost connection after AUTH from unknown[192.0.2.1]");
    assert_eq!(l.ident, Some("postfix/smtpd"));
    assert_eq!(l.time_us, Some(ts("2026-12-01T09:00:00.123456Z")));
    let l = parser().parse("2026-12-01T10:00:00+0000 h sshd[5]: hello");
    assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
    assert_eq!(l.message, "hello");
}

#[test]
fn rfc5424() {
    let l = parser().parse(r#"<38>1 2026-12-01T10:00:00Z host sshd 77 - [meta x="a]b"] Invalid user a from 192.0.2.3 port 1"#);
    assert_eq!(l.ident, Some("sshd"));
    assert_eq!(l.pid, Some(77));
    assert_eq!(l.message, "Invalid user a from 192.0.2.3 port 1");
    let l = parser().parse("<38>1 - - app - - - msg");
    assert_eq!(l.time_us, None);
    assert_eq!(l.message, "msg");
}

#[test]
fn ident_without_pid_and_plain_messages() {
    let l = parser().parse("Dec  1 10:00:00 h kernel: [ 12.3] x");
    assert_eq!(l.ident, Some("kernel"));
    assert_eq!(l.pid, None);
    let plain = "Failed password for root from 192.0.2.9 port 22 ssh2";
    let l = parser().parse(plain);
    assert_eq!((l.ident, l.message), (None, plain));
    // Looks like a date but is a message.
    let l = parser().parse("2026 was a good year: 192.0.2.1");
    assert_eq!(l.ident, None);
}

#[test]
fn forged_ident_cannot_carry_a_fake_pid() {
    let l = parser().parse("Dec  1 10:00:00 h sshd[12x]: m");
    assert_eq!(l.ident, None, "a malformed pid makes the line plain text");
}

#[test]
fn iso_with_a_space_and_an_offset() {
    let l = parser().parse("2026-12-01 10:00:00 +0000 mx postfix/smtpd[9]: hello");
    assert_eq!(
        (l.ident, l.pid, l.message),
        (Some("postfix/smtpd"), Some(9), "hello")
    );
    assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
    let l = parser().parse("2026-12-01 11:00:00.5+0100 mx sshd[9]: hello");
    assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00.5Z")));
    // Local time without an offset.
    let l = parser().parse("2026-12-01 10:00:00 mx sshd[9]: hello");
    assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
    // A service's own file with an ISO date stays one plain line (exim's mainlog).
    let exim = "2026-12-01 10:00:00 [1234] SMTP call from [192.0.2.1] dropped";
    assert_eq!(parser().parse(exim).ident, None);
    assert_eq!(parser().parse(exim).message, exim);
}

#[test]
fn lines_without_a_hostname() {
    let l = parser().parse("Nov 23 21:50:37 sshd[8148]: Connection closed by 192.0.2.1");
    assert_eq!((l.host, l.ident, l.pid), (None, Some("sshd"), Some(8148)));
    assert_eq!(l.message, "Connection closed by 192.0.2.1");
    let l = parser().parse("Dec  1 10:00:00 cyrus/pop3[42]: badlogin: x");
    assert_eq!((l.host, l.ident), (None, Some("cyrus/pop3")));
    let l = parser().parse("Dec  1 10:00:00 kernel: x");
    assert_eq!((l.host, l.ident, l.message), (None, Some("kernel"), "x"));
}

#[test]
fn lines_without_a_timestamp_need_a_pid() {
    let l = parser().parse("srv sshd[13709]: Invalid user a from 192.0.2.3");
    assert_eq!(
        (l.host, l.ident, l.pid),
        (Some("srv"), Some("sshd"), Some(13709))
    );
    assert_eq!(l.message, "Invalid user a from 192.0.2.3");
    assert_eq!(l.time_us, None);
    // Without a pid, or with a level word for an ident, it is a plain message.
    for m in [
        "srv sshd: Invalid user a from 192.0.2.3",
        "NOTICE[12049]: chan_sip.c: Registration from 'x' failed for '192.0.2.1:5060'",
        "error: PAM: Authentication failure for root from 192.0.2.1",
    ] {
        let l = parser().parse(m);
        assert_eq!((l.ident, l.message), (None, m));
    }
}

#[test]
fn missing_colon_bracketed_ident_and_facility_tokens() {
    let l = parser().parse("Feb  1 00:00:00 myhost proftpd[12345] myhost.example (x): USER");
    assert_eq!((l.ident, l.pid), (Some("proftpd"), Some(12345)));
    assert_eq!(l.message, "myhost.example (x): USER");
    let l = parser().parse("Jun 25 23:53:34 [sshd]: User root from 192.0.2.1 not allowed");
    assert_eq!((l.host, l.ident, l.pid), (None, Some("sshd"), None));
    assert_eq!(l.message, "User root from 192.0.2.1 not allowed");
    // Without the colon, a bracketed word is a program's own level tag.
    let own = "2026-12-01 17:39:54.767815 [WARNING] sofia_reg.c:1533 SIP auth failure";
    assert_eq!(parser().parse(own).ident, None);
    assert_eq!(parser().parse(own).message, own);
    let l = parser().parse("Jun 17 14:37:39 <mail.info> robin sm-mta[2794]: x: from=<>");
    assert_eq!(
        (l.host, l.ident, l.message),
        (Some("robin"), Some("sm-mta"), "x: from=<>")
    );
    let l = parser().parse("Mar 29 05:59:23 h sshd[20]: [ID 800047 auth.info] Failed x");
    assert_eq!(l.message, "Failed x");
    let l = parser().parse("Feb 15 11:25:46 gw.local system,error,critical login failure");
    assert_eq!(
        (l.host, l.ident),
        (Some("gw.local"), Some("system,error,critical"))
    );
    assert_eq!(l.message, "login failure");
    // A word in brackets that is a number or an address is no ident.
    let l = parser().parse("Dec  1 10:00:00 h [192.0.2.1] x");
    assert_eq!(l.ident, None);
}

#[test]
fn a_programs_own_log_file_is_plain_text_after_its_timestamp() {
    let l = parser().parse("Jan 29 09:33:58 pop3-login: Info: Aborted login (auth failed)");
    assert_eq!(l.ident, None);
    assert_eq!(l.message, "pop3-login: Info: Aborted login (auth failed)");
    assert_eq!(l.time_us, Some(ts("2026-01-29T09:33:58Z")));
    let l = parser().parse("2013-08-11 03:56:40 auth-worker(7): Info: pam(u,192.0.2.1): x");
    assert_eq!(
        (l.ident, l.message),
        (None, "auth-worker(7): Info: pam(u,192.0.2.1): x")
    );
    let l = parser().parse("Oct 23 02:06:39 security: info: client @0x7f 192.0.2.8#53: x");
    assert_eq!(
        (l.ident, l.message),
        (None, "security: info: client @0x7f 192.0.2.8#53: x")
    );
    // With a host, the level belongs to the message.
    let l = parser().parse("Dec  1 10:00:00 h dovecot: auth: Error: x");
    assert_eq!((l.ident, l.message), (Some("dovecot"), "auth: Error: x"));
}

#[test]
fn message_repeated_stands_for_n_entries() {
    let l = parser().parse("Dec  1 10:00:00 h sshd[5]: message repeated 3 times: [ Failed password for root from 192.0.2.1 port 22 ssh2]");
    assert_eq!(
        l.message,
        "Failed password for root from 192.0.2.1 port 22 ssh2"
    );
    assert_eq!(l.repeats, 3);
    let l = parser().parse("Dec  1 10:00:00 h sshd[5]: message repeated 99999999 times: [ x]");
    assert_eq!(l.repeats, MAX_REPEATS);
    let l = parser().parse("Dec  1 10:00:00 h sshd[5]: message repeated 3 times: [ x");
    assert_eq!((l.repeats, l.message), (1, "message repeated 3 times: [ x"));
}
