//! f2b(1), generated from the command-line definitions of `src/cli/args.rs` with clap_mangen.
//!
//! The page is committed as `man/f2b.1`; the test `f2b_1_is_generated_from_the_cli` fails when
//! it differs from what the current CLI gives. Regenerate it with
//!
//! ```sh
//! F2B_REGEN_MAN=1 cargo test --test system f2b_1
//! ```
//!
//! Synopsis, options and the per-command sections come from clap (doc comments of the CLI);
//! the prose sections around them are [`DESCRIPTION`] and [`TAIL`] below.

use clap::CommandFactory;

const HEADER: &str = r#".\" Generated from the CLI definitions in src/cli/args.rs by tests/system/mangen.rs:
.\" do not edit. Regenerate with: F2B_REGEN_MAN=1 cargo test --test system f2b_1
"#;

const DESCRIPTION: &str = r#".SH DESCRIPTION
.B f2b
is the command\-line tool of the f2b intrusion prevention system.
.PP
The commands
.BR check ,
.BR test ,
.BR filters ,
.B firewall
and
.B demo\-journal
work without the daemon: they validate the configuration, run a filter over a journal or a
text (like fail2ban\-regex), list the filters, and read or delete f2b's nftables table.
.PP
The other commands are clients of the running daemon
.BR f2bd (8)
over its D\-Bus interface
.BR org.f2b (5)
on the system bus.
Reading commands
.RB ( status ,
.BR bans ,
.BR history ,
.BR monitor )
are open to every user; commands that change something
.RB ( ban ,
.BR unban ,
.BR reload ,
.BR start ,
.BR stop ,
.BR set )
need root, or the polkit action
.BR org.f2b.manage .
"#;

const TAIL: &str = r#".SH EXIT STATUS
.TP
.B 0
Success. Also when standard output is closed early by its reader
.RB ( "f2b filters | head \-1" ):
the command ends quietly.
.TP
.B 1
An error, printed on standard error: an invalid configuration (every problem, each naming
file, line and key), a request f2bd refused (the message says why), a failed sample check of
.BR "test \-\-samples" .
.TP
.B 2
The command line is wrong: an unknown option, or a value that does not parse (an address,
a duration, a jail name); the message names the argument.
.TP
.B 3
f2bd is not running (nobody owns
.B org.f2b
on the bus), or the bus cannot be reached.
.TP
.B 4
Permission denied: the command changes something and the caller is neither root nor
granted
.B org.f2b.manage
by polkit.
.SH EXAMPLES
Validate a configuration change, then apply it:
.PP
.RS
.EX
f2b check && systemctl reload f2b
.EE
.RE
.PP
See what the sshd filter finds in the system journal, and which bans the jail would make:
.PP
.RS
.EX
f2b test sshd
f2b test \-\-jail sshd sshd
.EE
.RE
.PP
Look at the jails, ban an address for an hour, lift it again:
.PP
.RS
.EX
f2b status
f2b ban sshd 203.0.113.9 \-\-for 1h
f2b unban 203.0.113.9
.EE
.RE
.SH FILES
.TP
.I /etc/f2b/f2b.toml
The configuration, with drop\-ins in
.IR /etc/f2b/jail.d/*.toml ;
see
.BR f2b.toml (5).
.TP
.IR /usr/lib/f2b/filters ", " /etc/f2b/filters
Filters, see
.BR f2b.filter (5).
.SH SEE ALSO
.BR f2bd (8),
.BR f2b.toml (5),
.BR f2b.filter (5),
.BR org.f2b (5),
.BR journalctl (1),
.BR nft (8)
"#;

/// Strip the `.SH …` line clap_mangen starts a section with.
fn body(section: Vec<u8>) -> String {
    let text = String::from_utf8(section).expect("roff is UTF-8");
    text.lines()
        .filter(|l| !l.starts_with(".SH "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// One `.SS` per (sub)command: its synopsis, description and own options.
fn command_section(out: &mut String, path: &str, cmd: &clap::Command) {
    let sub = cmd.clone().bin_name(path).mut_args(|a| {
        // -h/--help and -V/--version are documented once, at the top.
        if a.get_id() == "help" || a.get_id() == "version" {
            a.hide(true)
        } else {
            a
        }
    });
    let children: Vec<clap::Command> = sub
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .cloned()
        .collect();
    out.push_str(&format!(".SS \"{}\"\n", path.replace('-', "\\-")));
    let man = clap_mangen::Man::new(sub.clone().disable_help_subcommand(true));
    let mut synopsis = Vec::new();
    man.render_synopsis_section(&mut synopsis).unwrap();
    out.push_str(&body(synopsis));
    out.push_str(".PP\n");
    let mut description = Vec::new();
    man.render_description_section(&mut description).unwrap();
    let description = body(description);
    if description.trim().is_empty() {
        if let Some(about) = sub.get_about() {
            out.push_str(&roff_text(&about.to_string()));
        }
    } else {
        out.push_str(&description);
    }
    let mut options = Vec::new();
    man.render_options_section(&mut options).unwrap();
    let options = body(options);
    if !options.trim().is_empty() {
        out.push_str(&options);
    }
    // `f2b set JAIL maxretry`: the parent's positional arguments come before the child.
    let positionals: String = sub
        .get_positionals()
        .filter(|a| !a.is_hide_set())
        .map(|a| format!(" {}", a.get_id().as_str().to_uppercase()))
        .collect();
    for child in &children {
        command_section(
            out,
            &format!("{path}{positionals} {}", child.get_name()),
            child,
        );
    }
}

/// Plain text as one roff paragraph (escape backslashes, hyphens and leading dots).
fn roff_text(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let l = line.replace('\\', "\\e").replace('-', "\\-");
        if l.starts_with('.') || l.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The whole page.
pub fn render() -> String {
    let mut cmd = f2b::cli::Cli::command();
    cmd.build();
    let version = env!("CARGO_PKG_VERSION");
    let top = cmd.clone().mut_args(|a| {
        if a.get_id() == "help" || a.get_id() == "version" {
            a.hide(true)
        } else {
            a
        }
    });
    let man = clap_mangen::Man::new(top)
        .title("F2B")
        .section("1")
        .date("2026")
        .source(format!("f2b {version}"))
        .manual("User Commands");
    let mut head = Vec::new();
    man.render_title(&mut head).unwrap();
    let mut out = String::from(HEADER);
    out.push_str(&String::from_utf8(head).unwrap());
    out.push_str(".SH NAME\nf2b \\- control and test the f2b intrusion prevention daemon\n");
    let mut synopsis = Vec::new();
    man.render_synopsis_section(&mut synopsis).unwrap();
    out.push_str(&String::from_utf8(synopsis).unwrap());
    out.push_str(DESCRIPTION);
    let mut options = Vec::new();
    man.render_options_section(&mut options).unwrap();
    let options = body(options);
    out.push_str(
        ".SH OPTIONS\nOptions follow the command they belong to (\\fBf2b status \\-\\-json\\fR); \
         each command's own are listed under COMMANDS. Every command takes:\n",
    );
    out.push_str(&options);
    out.push_str(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nPrint help (of a command: \\fBf2b\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR).\n");
    out.push_str(".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nPrint the version.\n");
    out.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        command_section(&mut out, &format!("f2b {}", sub.get_name()), sub);
    }
    out.push_str(TAIL);
    out
}
