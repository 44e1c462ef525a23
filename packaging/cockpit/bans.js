// The bans table (search, sort, remaining time, origin, unban per row) and the ban form.
// Used by the Bans view (every jail) and the jail page (one jail).

import { h, fill, link, message } from "./dom.js";
import { addressProblem, formatDuration, formatTime, parseDuration, remainingSeconds } from "./format.js";
import { describeError } from "./model.js";

const COLUMNS = [
    ["address", "Address"],
    ["jail", "Jail"],
    ["start", "Banned at"],
    ["remaining", "Remaining"],
    ["count", "Ban #"],
    ["failures", "Failures"],
    ["origin", "Origin"],
];

/** Where a ban came from; older f2bd versions do not say, so it is inferred (see below). */
export function originOf(ban) {
    if (ban.origin)
        return ban.origin;
    // Without an origin field, a ban made without failures was made by hand (Ban over D-Bus).
    if (ban.failures === null || ban.failures === undefined)
        return "";
    return ban.failures > 0 ? "local" : "manual";
}

function sortValue(ban, key, nowMs) {
    switch (key) {
    case "remaining": {
        const r = remainingSeconds(ban.end, nowMs);
        return r < 0 ? Infinity : r;
    }
    case "origin":
        return originOf(ban);
    case "address":
        return ban.address;
    default:
        return ban[key] ?? -1;
    }
}

export class BansTable {
    constructor(model, jail) {
        this.model = model;
        this.jail = jail; // null = every jail
        this.sort = { key: "start", desc: true };
        this.query = "";
        this.errors = new Map(); // jail\naddress → message shown in the row
        this.search = h("input", {
            type: "search", class: "f2b-input", placeholder: "Search address, jail, origin",
            "aria-label": "Search bans", id: jail ? null : "ban-search",
            oninput: () => { this.query = this.search.value.trim().toLowerCase(); this.update() },
        });
        this.count = h("span", { class: "f2b-muted" });
        this.body = h("tbody");
        this.head = h("tr");
        this.el = h("div", { class: "f2b-bans" },
                    h("div", { class: "f2b-toolbar" }, this.search, this.count),
                    h("table", { class: "f2b-table", id: jail ? "jail-bans" : "bans" },
                      h("thead", {}, this.head), this.body));
        this.renderHead();
    }

    renderHead() {
        fill(this.head, COLUMNS.filter(([k]) => !(this.jail && k === "jail")).map(([key, label]) => {
            const active = this.sort.key === key;
            return h("th", { "aria-sort": active ? (this.sort.desc ? "descending" : "ascending") : null },
                     h("button", {
                         class: "f2b-sort" + (active ? " f2b-sort-active" : ""),
                         "data-sort": key,
                         onclick: () => {
                             this.sort = { key, desc: active ? !this.sort.desc : key === "start" };
                             this.renderHead();
                             this.update();
                         },
                     }, label, active ? (this.sort.desc ? " ▼" : " ▲") : ""));
        }), h("th", {}, h("span", { class: "f2b-sr" }, "Actions")));
    }

    rows(nowMs) {
        const q = this.query;
        const list = [...this.model.bans.values()].filter(b =>
            (!this.jail || b.jail === this.jail) &&
            (!q || b.address.toLowerCase().includes(q) || b.jail.toLowerCase().includes(q) ||
             originOf(b).toLowerCase().includes(q)));
        const { key, desc } = this.sort;
        list.sort((a, b) => {
            const x = sortValue(a, key, nowMs);
            const y = sortValue(b, key, nowMs);
            const c = typeof x === "string" ? x.localeCompare(y) : x - y;
            return (desc ? -c : c) || a.address.localeCompare(b.address);
        });
        return list;
    }

    update() {
        const now = Date.now();
        const list = this.rows(now);
        const total = [...this.model.bans.values()].filter(b => !this.jail || b.jail === this.jail).length;
        this.count.textContent = list.length === total ? `${total} active` : `${list.length} of ${total} active`;
        if (list.length === 0) {
            fill(this.body, h("tr", {}, h("td", { colspan: 8, class: "f2b-empty" },
                                          total ? "No ban matches the search." : "No active bans.")));
            return;
        }
        fill(this.body, list.map(b => this.row(b, now)));
    }

    row(b, now) {
        const key = b.jail + "\n" + b.address;
        const err = this.errors.get(key);
        const rem = remainingSeconds(b.end, now);
        const unban = h("button", {
            class: "f2b-btn f2b-btn-secondary f2b-btn-small",
            "data-unban": b.address, "data-jail": b.jail,
            onclick: ev => this.unban(b, ev.currentTarget),
        }, "Unban");
        return h("tr", { "data-address": b.address, "data-jail": b.jail },
                 h("td", {}, link(["history", b.address], b.address, { class: "f2b-mono" })),
                 this.jail ? null : h("td", {}, link(["jail", b.jail], b.jail)),
                 h("td", {}, formatTime(b.start)),
                 h("td", { "data-remaining": b.end || 0 }, rem < 0 ? "permanent" : formatDuration(rem)),
                 h("td", {}, b.count ?? "…"),
                 h("td", {}, b.failures ?? "…"),
                 h("td", { class: "f2b-origin" }, originOf(b) || "—"),
                 h("td", { class: "f2b-actions" }, unban,
                   err ? h("span", { class: "f2b-inline f2b-inline-error", role: "alert" }, err) : null));
    }

    async unban(b, button) {
        const key = b.jail + "\n" + b.address;
        button.disabled = true;
        this.errors.delete(key);
        try {
            await this.model.unban(b.jail, b.address);
        } catch (err) {
            this.errors.set(key, describeError(err));
            this.update();
        }
    }

    /** Update only the remaining times (called every second). */
    tick() {
        const now = Date.now();
        for (const td of this.body.querySelectorAll("td[data-remaining]")) {
            const end = Number(td.dataset.remaining);
            if (end) {
                const rem = remainingSeconds(end, now);
                td.textContent = formatDuration(rem);
            }
        }
    }
}

/** The ban form: jail, address or CIDR, duration; checked before it is sent. */
export class BanForm {
    constructor(model, jail) {
        this.model = model;
        this.fixedJail = jail;
        this.jailSelect = h("select", { class: "f2b-input", id: "ban-jail", "aria-label": "Jail" });
        this.address = h("input", {
            class: "f2b-input f2b-mono", id: "ban-address", placeholder: "203.0.113.7 or 2001:db8::/64",
            "aria-label": "Address or prefix", autocomplete: "off",
        });
        this.duration = h("input", {
            class: "f2b-input", id: "ban-duration", placeholder: "jail's ban time",
            "aria-label": "Duration", autocomplete: "off",
        });
        this.addrError = h("div", { class: "f2b-field-error", id: "ban-address-error", hidden: true });
        this.durError = h("div", { class: "f2b-field-error", id: "ban-duration-error", hidden: true });
        this.result = h("div", { id: "ban-result", hidden: true });
        this.submit = h("button", { class: "f2b-btn f2b-btn-primary", type: "submit", id: "ban-submit" }, "Ban");
        this.el = h("form", {
            class: "f2b-form f2b-ban-form", id: "ban-form", novalidate: true,
            onsubmit: ev => { ev.preventDefault(); this.send() },
        },
                    jail ? null : h("label", { class: "f2b-field" }, h("span", {}, "Jail"), this.jailSelect),
                    h("label", { class: "f2b-field" }, h("span", {}, "Address or prefix"), this.address, this.addrError),
                    h("label", { class: "f2b-field" }, h("span", {}, "Duration"), this.duration, this.durError,
                      h("small", { class: "f2b-muted" }, "e.g. 600, 10m, 1h30m, 2d; empty: the jail's ban time")),
                    h("div", { class: "f2b-field f2b-field-button" }, this.submit, this.result));
        this.update();
    }

    update() {
        if (this.fixedJail)
            return;
        const current = this.jailSelect.value;
        fill(this.jailSelect, [...this.model.jails.values()].map(j =>
            h("option", { value: j.Name, selected: j.Name === current ? true : null },
              j.Name + (j.Enabled ? "" : " (stopped)"))));
    }

    async send() {
        const jail = this.fixedJail || this.jailSelect.value;
        const address = this.address.value.trim();
        const addrProblem = addressProblem(address);
        message(this.addrError, "error", addrProblem);
        let seconds = null;
        try {
            seconds = parseDuration(this.duration.value);
            message(this.durError, "error", "");
        } catch (e) {
            message(this.durError, "error", e.message);
        }
        message(this.result, "info", "");
        if (addrProblem || seconds === null || !jail)
            return;
        this.submit.disabled = true;
        try {
            const [until] = await this.model.ban(jail, address, seconds);
            message(this.result, "success",
                    `${address} banned in ${jail} ` + (until ? `until ${new Date(until / 1000).toLocaleString()}` : "permanently"));
            this.address.value = "";
        } catch (err) {
            message(this.result, "error", describeError(err));
        } finally {
            this.submit.disabled = false;
        }
    }
}
