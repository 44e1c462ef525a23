# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_f2b_global_optspecs
    string join \n h/help V/version
end

function __fish_f2b_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_f2b_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_f2b_using_subcommand
    set -l cmd (__fish_f2b_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c f2b -n "__fish_f2b_needs_command" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_needs_command" -s V -l version -d 'Print version'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "import-fail2ban" -d 'Turn a fail2ban setup (jails, filters, actions, bans) into an f2b configuration and state; prints what was imported, mapped, translated or not (exit status 1 when something enabled is not carried over)'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "check" -d 'Validate the configuration and filters without running anything'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "test" -d 'Run a filter over a journal or text and report what it matches (like fail2ban-regex)'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "filters" -d 'List the installed filters with their journal matches and modes'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "firewall" -d 'Read f2b\'s nftables table directly from the kernel (root; works without the daemon)'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "demo-journal" -d 'Write a demonstration journal (sshd attacks among ordinary traffic) into DIR'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "status" -d 'The jails with their counters, or one jail\'s settings, counters and bans'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "ban" -d 'Ban an address or prefix (CIDR) in a jail'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "unban" -d 'Lift bans: `f2b unban [JAIL] ADDR…`, or every ban with `f2b unban --all [JAIL]`'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "bans" -d 'Active bans of one jail or of all'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "reload" -d 'Make f2bd re-read its configuration (the running one stays if the new one is broken)'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "monitor" -d 'Print bans and unbans as they happen, until Ctrl-C'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "history" -d 'Past bans of an address'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "start" -d 'Enable a configured jail at run time'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "stop" -d 'Disable a jail at run time'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "set" -d 'Change maxretry, findtime or bantime of a running jail (until the next reload)'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "feeds" -d 'The blocklist feeds: entries, elements in the firewall, fetch times, bad lines, errors'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "fleet" -d 'The fleet (bans shared with other hosts through NATS): connection, lag (stream messages not applied here yet), peers with when each was last seen, the decisions received lately and what was refused, by reason'
complete -c f2b -n "__fish_f2b_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c f2b -n "__fish_f2b_using_subcommand import-fail2ban" -l from -d 'fail2ban\'s configuration directory' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand import-fail2ban" -l to -d 'Where to write f2b.toml (and filters/ when a filter is translated)' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand import-fail2ban" -l db -d 'fail2ban\'s database, whose bans and ban history are imported (default: dbfile of fail2ban.conf, else /var/lib/fail2ban/fail2ban.sqlite3)' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand import-fail2ban" -l state-dir -d 'f2b\'s state directory to import the bans into (with --db; default /var/lib/f2b)' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand import-fail2ban" -l dry-run -d 'Print the report only; write nothing'
complete -c f2b -n "__fish_f2b_using_subcommand import-fail2ban" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c f2b -n "__fish_f2b_using_subcommand check" -l config -d 'Root configuration file; drop-ins are read from jail.d/ beside it (default /etc/f2b/f2b.toml; the shipped default configuration when it is absent)' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand check" -l filter-dir -d 'Extra filter directory, searched after /usr/lib/f2b/filters and /etc/f2b/filters' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand check" -l no-system-filters -d 'Ignore /usr/lib/f2b/filters and /etc/f2b/filters (use only built-in and --filter-dir)'
complete -c f2b -n "__fish_f2b_using_subcommand check" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand check" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand test" -l journal-dir -d 'Read the journal files of this directory (as SOURCE does for a directory)' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand test" -l jail -d 'Replay this jail of the configuration and print the bans it would make' -r
complete -c f2b -n "__fish_f2b_using_subcommand test" -l config -d 'Root configuration file; drop-ins are read from jail.d/ beside it (default /etc/f2b/f2b.toml; the shipped default configuration when it is absent)' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand test" -l filter-dir -d 'Extra filter directory, searched after /usr/lib/f2b/filters and /etc/f2b/filters' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand test" -l show-missed -d 'Print the lines given to the filter that no failregex matched (like fail2ban-regex\'s --print-all-missed), at most 1000'
complete -c f2b -n "__fish_f2b_using_subcommand test" -l all-units -d 'Do not apply the filter\'s journal matches (read every unit)'
complete -c f2b -n "__fish_f2b_using_subcommand test" -l samples -d 'Check the filter\'s own sample file (built in, or given as SOURCE)'
complete -c f2b -n "__fish_f2b_using_subcommand test" -l no-system-filters -d 'Ignore /usr/lib/f2b/filters and /etc/f2b/filters (use only built-in and --filter-dir)'
complete -c f2b -n "__fish_f2b_using_subcommand test" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand test" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand filters" -l filter-dir -d 'Extra filter directory, searched after /usr/lib/f2b/filters and /etc/f2b/filters' -r -F
complete -c f2b -n "__fish_f2b_using_subcommand filters" -l no-system-filters -d 'Ignore /usr/lib/f2b/filters and /etc/f2b/filters (use only built-in and --filter-dir)'
complete -c f2b -n "__fish_f2b_using_subcommand filters" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand filters" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and not __fish_seen_subcommand_from show flush help" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and not __fish_seen_subcommand_from show flush help" -f -a "show" -d 'List every banned element of every jail with its remaining time'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and not __fish_seen_subcommand_from show flush help" -f -a "flush" -d 'Delete f2b\'s table (every ban). The daemon, if running, re-creates it'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and not __fish_seen_subcommand_from show flush help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and __fish_seen_subcommand_from flush" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and __fish_seen_subcommand_from help" -f -a "show" -d 'List every banned element of every jail with its remaining time'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and __fish_seen_subcommand_from help" -f -a "flush" -d 'Delete f2b\'s table (every ban). The daemon, if running, re-creates it'
complete -c f2b -n "__fish_f2b_using_subcommand firewall; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c f2b -n "__fish_f2b_using_subcommand completions" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand demo-journal" -l entries -d 'Number of entries' -r
complete -c f2b -n "__fish_f2b_using_subcommand demo-journal" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand status" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand status" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c f2b -n "__fish_f2b_using_subcommand ban" -l for -d 'How long, e.g. "1h" or "2d" (default: the jail\'s ban time)' -r
complete -c f2b -n "__fish_f2b_using_subcommand ban" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand ban" -l force -d 'Ban a prefix even though it holds an address of the jail\'s ignoreip or one of this host\'s own addresses (a single such address is always refused)'
complete -c f2b -n "__fish_f2b_using_subcommand ban" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand ban" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand unban" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand unban" -l all -d 'Lift every ban (of JAIL, or of every jail)'
complete -c f2b -n "__fish_f2b_using_subcommand unban" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand unban" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand bans" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand bans" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand bans" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand reload" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand reload" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand reload" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand monitor" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand monitor" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand monitor" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand history" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand history" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand history" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand start" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand start" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand stop" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand stop" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand set; and not __fish_seen_subcommand_from maxretry findtime bantime help" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand set; and not __fish_seen_subcommand_from maxretry findtime bantime help" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand set; and not __fish_seen_subcommand_from maxretry findtime bantime help" -a "maxretry" -d 'Failures within findtime that lead to a ban (1–1000000)'
complete -c f2b -n "__fish_f2b_using_subcommand set; and not __fish_seen_subcommand_from maxretry findtime bantime help" -a "findtime" -d 'Time over which failures count, e.g. "10m"'
complete -c f2b -n "__fish_f2b_using_subcommand set; and not __fish_seen_subcommand_from maxretry findtime bantime help" -a "bantime" -d 'Ban length, e.g. "1h", or "forever"'
complete -c f2b -n "__fish_f2b_using_subcommand set; and not __fish_seen_subcommand_from maxretry findtime bantime help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from maxretry" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from maxretry" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from findtime" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from findtime" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from bantime" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from bantime" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from help" -f -a "maxretry" -d 'Failures within findtime that lead to a ban (1–1000000)'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from help" -f -a "findtime" -d 'Time over which failures count, e.g. "10m"'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from help" -f -a "bantime" -d 'Ban length, e.g. "1h", or "forever"'
complete -c f2b -n "__fish_f2b_using_subcommand set; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c f2b -n "__fish_f2b_using_subcommand feeds" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand feeds" -l refresh -d 'Fetch now (root or polkit), and wait until it is enforced'
complete -c f2b -n "__fish_f2b_using_subcommand feeds" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand feeds" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c f2b -n "__fish_f2b_using_subcommand fleet" -l bus -d 'The bus f2bd serves org.f2b on: system, session, or a bus address' -r
complete -c f2b -n "__fish_f2b_using_subcommand fleet" -l json -d 'Machine-readable output (JSON)'
complete -c f2b -n "__fish_f2b_using_subcommand fleet" -s h -l help -d 'Print help'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "import-fail2ban" -d 'Turn a fail2ban setup (jails, filters, actions, bans) into an f2b configuration and state; prints what was imported, mapped, translated or not (exit status 1 when something enabled is not carried over)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "check" -d 'Validate the configuration and filters without running anything'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "test" -d 'Run a filter over a journal or text and report what it matches (like fail2ban-regex)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "filters" -d 'List the installed filters with their journal matches and modes'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "firewall" -d 'Read f2b\'s nftables table directly from the kernel (root; works without the daemon)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "demo-journal" -d 'Write a demonstration journal (sshd attacks among ordinary traffic) into DIR'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "status" -d 'The jails with their counters, or one jail\'s settings, counters and bans'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "ban" -d 'Ban an address or prefix (CIDR) in a jail'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "unban" -d 'Lift bans: `f2b unban [JAIL] ADDR…`, or every ban with `f2b unban --all [JAIL]`'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "bans" -d 'Active bans of one jail or of all'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "reload" -d 'Make f2bd re-read its configuration (the running one stays if the new one is broken)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "monitor" -d 'Print bans and unbans as they happen, until Ctrl-C'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "history" -d 'Past bans of an address'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "start" -d 'Enable a configured jail at run time'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "stop" -d 'Disable a jail at run time'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "set" -d 'Change maxretry, findtime or bantime of a running jail (until the next reload)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "feeds" -d 'The blocklist feeds: entries, elements in the firewall, fetch times, bad lines, errors'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "fleet" -d 'The fleet (bans shared with other hosts through NATS): connection, lag (stream messages not applied here yet), peers with when each was last seen, the decisions received lately and what was refused, by reason'
complete -c f2b -n "__fish_f2b_using_subcommand help; and not __fish_seen_subcommand_from import-fail2ban check test filters firewall completions demo-journal status ban unban bans reload monitor history start stop set feeds fleet help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and __fish_seen_subcommand_from firewall" -f -a "show" -d 'List every banned element of every jail with its remaining time'
complete -c f2b -n "__fish_f2b_using_subcommand help; and __fish_seen_subcommand_from firewall" -f -a "flush" -d 'Delete f2b\'s table (every ban). The daemon, if running, re-creates it'
complete -c f2b -n "__fish_f2b_using_subcommand help; and __fish_seen_subcommand_from set" -f -a "maxretry" -d 'Failures within findtime that lead to a ban (1–1000000)'
complete -c f2b -n "__fish_f2b_using_subcommand help; and __fish_seen_subcommand_from set" -f -a "findtime" -d 'Time over which failures count, e.g. "10m"'
complete -c f2b -n "__fish_f2b_using_subcommand help; and __fish_seen_subcommand_from set" -f -a "bantime" -d 'Ban length, e.g. "1h", or "forever"'
