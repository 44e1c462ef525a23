// Formatting and validation shared by the views: durations, times, addresses.
// No D-Bus here; every function is pure.

/** Largest ban or find time f2bd accepts, in seconds (ten years). */
export const MAX_SECONDS = 315360000;

const UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Parse a duration as an admin types it: "" or "0" (the jail's own ban time), plain seconds
 * ("600"), or units ("10m", "1h30m", "2d", "1w"). Returns seconds, or throws an Error whose
 * message says what is wrong.
 */
export function parseDuration(text) {
    const t = String(text).trim().toLowerCase();
    if (t === "" || t === "0")
        return 0;
    if (/^\d+$/.test(t))
        return checkSeconds(Number(t), text);
    const re = /(\d+)\s*([smhdw])/gy;
    let total = 0;
    let end = 0;
    let m;
    while ((m = re.exec(t)) !== null) {
        total += Number(m[1]) * UNITS[m[2]];
        end = re.lastIndex;
        while (t[end] === " ")
            end++;
        re.lastIndex = end;
    }
    if (end !== t.length || total === 0)
        throw new Error(`"${text}" is not a duration (e.g. 600, 10m, 1h30m, 2d)`);
    return checkSeconds(total, text);
}

function checkSeconds(n, text) {
    if (n > MAX_SECONDS)
        throw new Error(`"${text}" is longer than ten years`);
    return n;
}

/** "1h 30m" for 5400; "permanent" for -1; "0s" for 0. */
export function formatDuration(seconds) {
    if (seconds < 0)
        return "permanent";
    let s = Math.round(seconds);
    if (s === 0)
        return "0s";
    const parts = [];
    for (const [unit, n] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
        if (s >= n) {
            parts.push(Math.floor(s / n) + unit);
            s %= n;
        }
        if (parts.length === 2)
            break;
    }
    return parts.join(" ");
}

/** Local date and time of a µs timestamp, e.g. "2026-12-02 10:04:05". */
export function formatTime(usec) {
    if (!usec)
        return "—";
    const d = new Date(usec / 1000);
    const p = n => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
        `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Seconds left of a ban ending at `endUsec` (0 = permanent → -1), never below 0. */
export function remainingSeconds(endUsec, nowMs) {
    if (!endUsec)
        return -1;
    return Math.max(0, Math.floor((endUsec / 1000 - nowMs) / 1000));
}

function ipv4Bytes(text) {
    const parts = text.split(".");
    if (parts.length !== 4)
        return null;
    const out = [];
    for (const p of parts) {
        if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p[0] === "0"))
            return null;
        out.push(Number(p));
    }
    return out;
}

function ipv6Bytes(text) {
    if (!/^[0-9a-f:.]+$/i.test(text))
        return null;
    const halves = text.split("::");
    if (halves.length > 2)
        return null;
    const groups = h => (h === "" ? [] : h.split(":"));
    const head = groups(halves[0]);
    const tail = halves.length === 2 ? groups(halves[1]) : [];
    const words = [];
    const all = head.concat(tail);
    // An embedded IPv4 address may end the text (::ffff:192.0.2.1).
    let v4 = null;
    if (all.length && all[all.length - 1].includes(".")) {
        v4 = ipv4Bytes(all[all.length - 1]);
        if (!v4)
            return null;
        (tail.length ? tail : head).pop();
    }
    for (const g of head.concat(["|"], tail)) {
        if (g === "|") {
            words.push(g);
            continue;
        }
        if (!/^[0-9a-f]{1,4}$/i.test(g))
            return null;
        words.push(parseInt(g, 16));
    }
    const need = 8 - (v4 ? 2 : 0);
    const have = words.length - 1;
    if (halves.length === 1 && have !== need)
        return null;
    if (halves.length === 2 && have >= need)
        return null;
    const full = [];
    for (const w of words) {
        if (w === "|") {
            if (halves.length === 2)
                for (let i = 0; i < need - have; i++) full.push(0);
        } else {
            full.push(w);
        }
    }
    const bytes = [];
    for (const w of full) bytes.push(w >> 8, w & 255);
    return v4 ? bytes.concat(v4) : bytes;
}

/**
 * Check an address or CIDR prefix as f2bd will: IPv4 or IPv6, prefixes at least /8 (IPv4)
 * or /16 (IPv6) with the host bits clear. Returns null when it is acceptable, else why not.
 */
export function addressProblem(text) {
    const t = String(text).trim();
    if (t === "")
        return "enter an address or a prefix (CIDR)";
    const [addr, len, extra] = t.split("/");
    if (extra !== undefined)
        return `"${t}" has more than one "/"`;
    const bytes = addr.includes(":") ? ipv6Bytes(addr) : ipv4Bytes(addr);
    if (!bytes)
        return `"${addr}" is not an IPv4 or IPv6 address`;
    if (len === undefined)
        return null;
    const bits = bytes.length * 8;
    const min = bytes.length === 4 ? 8 : 16;
    if (!/^\d{1,3}$/.test(len) || Number(len) > bits)
        return `"/${len}" is not a prefix length for this address`;
    const n = Number(len);
    if (n < min)
        return `prefixes shorter than /${min} are refused`;
    for (let bit = n; bit < bits; bit++) {
        if (bytes[bit >> 3] & (0x80 >> (bit & 7)))
            return `host bits are set after /${n}: give the network address`;
    }
    return null;
}
