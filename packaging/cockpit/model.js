// The page's state and its only link to f2bd: org.f2b on the system bus, through
// cockpit.js's D-Bus client with superuser "try" (root when the session may be, else the
// logged-in user, whom f2bd authorizes with polkit's org.f2b.manage).
//
// State is filled once at start (and again when f2bd restarts), then kept current by the
// Banned/Unbanned signals and PropertiesChanged: nothing is polled.

/* global cockpit */

const BUS_NAME = "org.f2b";
const MANAGER = "/org/f2b";
const MANAGER_IFACE = "org.f2b.Manager1";
const JAIL_IFACE = "org.f2b.Jail1";
const PROPS = "org.freedesktop.DBus.Properties";
/** GetBans pages at most this many (org.f2b(5)). */
const PAGE = 10000;
/** The chart covers this much history. */
export const HISTORY_SPAN_MS = 24 * 3600 * 1000;

/** What a failed call shows in place of the control. */
export function describeError(err) {
    const name = err && err.name ? String(err.name) : "";
    if (name === "org.f2b.Error.NotAuthorized" || name.endsWith(".AccessDenied"))
        return "not authorized";
    if (name === "org.freedesktop.DBus.Error.ServiceUnknown")
        return "f2bd is not running";
    return (err && (err.message || err.problem)) || String(err);
}

/** Escape a jail name as f2bd does for its object paths (systemd's label escaping). */
export function jailPath(name) {
    let out = "";
    const bytes = new TextEncoder().encode(name);
    bytes.forEach((b, i) => {
        const c = String.fromCharCode(b);
        if (/[A-Za-z0-9]/.test(c) && !(i === 0 && /[0-9]/.test(c)))
            out += c;
        else
            out += "_" + b.toString(16).padStart(2, "0");
    });
    return "/org/f2b/jail/" + (out || "_");
}

function unwrap(props) {
    const out = {};
    for (const k in props)
        out[k] = props[k] && props[k].v !== undefined ? props[k].v : props[k];
    return out;
}

/** A ban as GetBans/ListBans return it, plus an origin when f2bd sends one. */
function banFromWire(row) {
    const [jail, address, start, end, count, failures] = row;
    // Newer f2bd versions append an origin ("local", "manual", "peer:HOST", "import").
    const origin = typeof row[6] === "string" ? row[6] : null;
    return { jail, address, start, end, count, failures, origin };
}

const banKey = (jail, address) => jail + "\n" + address;

export class Model {
    constructor() {
        this.client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });
        this.jails = new Map(); // name → properties (+ matches)
        this.bans = new Map(); // jail\naddress → ban
        this.history = []; // [jail, address, start µs] of the last 24 h
        this.firewall = null; // { backend, elements, error }
        this.version = "";
        this.running = null; // f2bd owns org.f2b?
        this.loadError = null;
        this.listeners = new Set();
        this.refreshTimers = new Map();
        this.client.addEventListener("owner", (_ev, owner) => {
            this.running = !!owner;
            if (owner)
                this.load();
            else
                this.changed("all");
        });
        this.client.subscribe({ interface: MANAGER_IFACE, path: MANAGER, member: "Banned" },
                              (_p, _i, _s, args) => this.onBanned(...args));
        this.client.subscribe({ interface: MANAGER_IFACE, path: MANAGER, member: "Unbanned" },
                              (_p, _i, _s, args) => this.onUnbanned(...args));
        this.client.subscribe({ interface: PROPS, member: "PropertiesChanged", path_namespace: MANAGER },
                              (path, _i, _s, args) => this.onProperties(path, args[0], args[1]));
    }

    /** `fn(what)` is called after each change ("all", "jails", "bans", "firewall"). */
    listen(fn) {
        this.listeners.add(fn);
    }

    changed(what) {
        for (const fn of this.listeners) fn(what);
    }

    call(path, iface, method, args, type) {
        return this.client.call(path, iface, method, args, type !== undefined ? { type } : {});
    }

    /** Read everything: jails, bans, history, firewall. */
    async load() {
        try {
            const [names] = await this.call(MANAGER, MANAGER_IFACE, "ListJails", []);
            const [mprops] = await this.call(MANAGER, PROPS, "GetAll", [MANAGER_IFACE], "s");
            this.version = unwrap(mprops).Version || "";
            this.running = true;
            await this.loadJails(names);
            await this.loadBans();
            await this.loadHistory();
            this.loadError = null;
            this.changed("all");
            await this.loadFirewall();
        } catch (err) {
            this.loadError = describeError(err);
            if (err && err.name === "org.freedesktop.DBus.Error.ServiceUnknown")
                this.running = false;
            this.changed("all");
        }
    }

    async loadJails(names) {
        const jails = new Map();
        await Promise.all(names.map(async name => {
            const path = jailPath(name);
            const [props] = await this.call(path, PROPS, "GetAll", [JAIL_IFACE], "s");
            const [matches] = await this.call(path, JAIL_IFACE, "GetJournalMatches", []);
            jails.set(name, { ...unwrap(props), path, matches });
        }));
        this.jails = new Map([...jails.entries()].sort((a, b) => a[0].localeCompare(b[0])));
    }

    async fetchBans(jail) {
        const out = [];
        for (let offset = 0; ; offset += PAGE) {
            const [rows, total] = await this.call(MANAGER, MANAGER_IFACE, "GetBans",
                                                  [jail, offset, PAGE], "suu");
            rows.forEach(r => out.push(banFromWire(r)));
            if (rows.length === 0 || offset + rows.length >= total)
                return out;
        }
    }

    async loadBans() {
        const bans = new Map();
        for (const b of await this.fetchBans("")) bans.set(banKey(b.jail, b.address), b);
        this.bans = bans;
    }

    async loadHistory() {
        const since = (Date.now() - HISTORY_SPAN_MS) * 1000;
        const [rows] = await this.call(MANAGER, MANAGER_IFACE, "GetBanHistory", [since], "t");
        this.history = rows;
    }

    async loadFirewall() {
        try {
            const [backend, elements, error] = await this.call(MANAGER, MANAGER_IFACE, "GetFirewall", []);
            this.firewall = { backend, elements, error };
        } catch (err) {
            this.firewall = { backend: "", elements: 0, error: describeError(err) };
        }
        this.changed("firewall");
    }

    onBanned(jail, address, until) {
        const now = Date.now() * 1000;
        const old = this.bans.get(banKey(jail, address));
        this.bans.set(banKey(jail, address), {
            jail, address, start: old ? old.start : now, end: until,
            count: old ? old.count : null, failures: old ? old.failures : null,
            origin: old ? old.origin : null,
        });
        if (!old)
            this.history.push([jail, address, now]);
        this.changed("bans");
        // The signal carries no count, failures or origin: read this jail's bans once the
        // burst is over.
        this.refreshJailBans(jail);
    }

    onUnbanned(jail, address) {
        this.bans.delete(banKey(jail, address));
        this.changed("bans");
    }

    refreshJailBans(jail) {
        clearTimeout(this.refreshTimers.get(jail));
        this.refreshTimers.set(jail, setTimeout(async () => {
            this.refreshTimers.delete(jail);
            try {
                const fresh = await this.fetchBans(jail);
                for (const [k, b] of this.bans) if (b.jail === jail) this.bans.delete(k);
                fresh.forEach(b => this.bans.set(banKey(b.jail, b.address), b));
                this.changed("bans");
                await this.loadFirewall();
            } catch (err) {
                console.warn("f2b: cannot re-read the bans of", jail, err);
            }
        }, 300));
    }

    async onProperties(path, iface, changed) {
        if (path === MANAGER && iface === MANAGER_IFACE && changed.Jails) {
            try {
                await this.loadJails(changed.Jails.v);
                this.changed("jails");
            } catch (err) {
                console.warn("f2b: cannot re-read the jails", err);
            }
            return;
        }
        if (iface !== JAIL_IFACE)
            return;
        for (const jail of this.jails.values()) {
            if (jail.path === path) {
                Object.assign(jail, unwrap(changed));
                this.changed("jails");
            }
        }
    }

    // --- Changes. Each returns a promise; a refusal rejects with the D-Bus error. ---

    ban(jail, address, seconds) {
        return this.call(MANAGER, MANAGER_IFACE, "Ban", [jail, address, seconds], "sst");
    }

    unban(jail, address) {
        return this.call(MANAGER, MANAGER_IFACE, "Unban", [jail, address], "ss");
    }

    setJailEnabled(name, enabled) {
        return this.call(jailPath(name), JAIL_IFACE, enabled ? "Start" : "Stop", []);
    }

    /** prop: "MaxRetry" (u), "FindTime" (t) or "BanTime" (x). */
    setJailProperty(name, prop, type, value) {
        return this.call(jailPath(name), PROPS, "Set",
                         [JAIL_IFACE, prop, cockpit.variant(type, value)], "ssv");
    }

    addressHistory(address) {
        return this.call(MANAGER, MANAGER_IFACE, "GetHistory", [address], "s").then(r => r[0]);
    }
}
