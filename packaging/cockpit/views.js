// The page's views: overview, one jail, bans, and the history of an address. Each view
// builds its structure once (mount) and refreshes only what a model change touches
// (update), so that typing in a form survives live updates.

import { h, fill, link, card, message } from "./dom.js";
import { chart } from "./chart.js";
import { BansTable, BanForm } from "./bans.js";
import { formatDuration, formatTime, parseDuration, addressProblem } from "./format.js";
import { describeError } from "./model.js";

function stat(label, value, id, extra) {
    return h("div", { class: "f2b-stat", id },
             h("div", { class: "f2b-stat-value" }, value),
             h("div", { class: "f2b-stat-label" }, label), extra || null);
}

function firewallText(model) {
    const fw = model.firewall;
    if (!fw)
        return ["…", null];
    if (fw.error)
        return [fw.backend || "firewall", h("div", { class: "f2b-inline f2b-inline-error" }, fw.error)];
    const active = model.bans.size;
    const note = fw.backend === "dry-run"
        ? h("div", { class: "f2b-inline f2b-inline-warning" }, "dry run: nothing is blocked")
        : fw.elements === active
            ? h("div", { class: "f2b-muted" }, `${fw.elements} enforced`)
            : h("div", { class: "f2b-inline f2b-inline-warning" },
                `${fw.elements} enforced, ${active} active`);
    return [fw.backend, note];
}

/** Start/Stop for a jail, with its refusal shown beside it. */
function toggle(model, jail) {
    const msg = h("span", { hidden: true });
    const btn = h("button", {
        class: "f2b-btn f2b-btn-small " + (jail.Enabled ? "f2b-btn-secondary" : "f2b-btn-primary"),
        "data-toggle": jail.Name,
        onclick: async () => {
            btn.disabled = true;
            message(msg, "info", "");
            try {
                await model.setJailEnabled(jail.Name, !jail.Enabled);
            } catch (err) {
                message(msg, "error", describeError(err));
            } finally {
                btn.disabled = false;
            }
        },
    }, jail.Enabled ? "Stop" : "Start");
    return h("span", { class: "f2b-toggle" }, btn, msg);
}

function stateLabel(jail) {
    return h("span", { class: "f2b-label " + (jail.Enabled ? "f2b-label-green" : "f2b-label-grey") },
             jail.Enabled ? "Running" : "Stopped");
}

export class Overview {
    constructor(model) {
        this.model = model;
        this.stats = h("div", { class: "f2b-stats" });
        this.chart = h("div", { class: "f2b-chart-box", id: "chart" });
        this.jails = h("tbody");
        this.el = h("div", {},
                    this.stats,
                    card("Bans per hour, last 24 hours", this.chart),
                    card("Jails", h("table", { class: "f2b-table", id: "jails" },
                                    h("thead", {}, h("tr", {}, ["Jail", "State", "Filter", "Failing now",
                                        "Failures", "Active bans", "Total bans", ""].map(t => h("th", {}, t)))),
                                    this.jails)));
    }

    update() {
        const m = this.model;
        const jails = [...m.jails.values()];
        const [fw, fwNote] = firewallText(m);
        fill(this.stats,
             stat("Jails running", `${jails.filter(j => j.Enabled).length} of ${jails.length}`, "stat-jails"),
             stat("Active bans", m.bans.size, "stat-bans"),
             stat("Bans in 24 hours", m.history.filter(r => r[2] / 1000 >= Date.now() - 86400000).length, "stat-history"),
             stat("Firewall", fw, "stat-firewall", fwNote));
        fill(this.chart, chart(m.history, Date.now()));
        fill(this.jails, jails.length === 0
            ? h("tr", {}, h("td", { colspan: 8, class: "f2b-empty" }, "No jails are configured."))
            : jails.map(j => h("tr", { "data-jail": j.Name },
                               h("td", {}, link(["jail", j.Name], j.Name)),
                               h("td", {}, stateLabel(j)),
                               h("td", { class: "f2b-mono" }, j.Filter || "bans of other jails"),
                               h("td", {}, j.CurrentlyFailed),
                               h("td", {}, j.TotalFailed),
                               h("td", { class: "f2b-jail-banned" }, j.CurrentlyBanned),
                               h("td", {}, j.TotalBanned),
                               h("td", {}, toggle(m, j)))));
    }
}

/** A settings field bound to a writable Jail1 property. */
function settingField(model, jail, prop, label, type, toText, fromText) {
    const input = h("input", { class: "f2b-input", id: "set-" + prop, value: toText(jail[prop]), autocomplete: "off" });
    const msg = h("div", { hidden: true });
    const save = async () => {
        let value;
        try {
            value = fromText(input.value);
        } catch (e) {
            message(msg, "error", e.message);
            return;
        }
        if (value === jail[prop])
            return;
        try {
            await model.setJailProperty(jail.Name, prop, type, value);
            message(msg, "success", "saved (until the next reload)");
        } catch (err) {
            message(msg, "error", describeError(err));
            input.value = toText(jail[prop]);
        }
    };
    input.addEventListener("change", save);
    return { el: h("label", { class: "f2b-field" }, h("span", {}, label), input, msg), input, prop, toText };
}

export class JailPage {
    constructor(model, name) {
        this.model = model;
        this.name = name;
        this.header = h("div", { class: "f2b-jail-header" });
        this.source = h("dl", { class: "f2b-dl", id: "jail-source" });
        this.counters = h("div", { class: "f2b-stats" });
        this.settings = h("form", { class: "f2b-form", id: "jail-settings", onsubmit: e => e.preventDefault() });
        this.fields = null;
        this.table = new BansTable(model, name);
        this.form = new BanForm(model, name);
        this.el = h("div", {}, this.header, this.counters,
                    h("div", { class: "f2b-columns" },
                      card("Settings", this.settings,
                           h("p", { class: "f2b-muted" }, "Changes apply at once and last until the next reload; " +
                             "keep them in /etc/f2b/jail.d/ to make them permanent.")),
                      card("Source", this.source)),
                    card("Ban an address in this jail", this.form.el),
                    card("Bans", this.table.el));
    }

    update(what) {
        const j = this.model.jails.get(this.name);
        if (!j) {
            fill(this.header, h("h2", {}, `No jail named ${this.name}`), link([], "Back to the overview"));
            return;
        }
        fill(this.header, link([], "Overview"), " › ", h("h2", { class: "f2b-inline-title" }, j.Name), " ",
             stateLabel(j), " ", toggle(this.model, j));
        fill(this.counters,
             stat("Failing now", j.CurrentlyFailed, "jail-failing"),
             stat("Failures", j.TotalFailed, "jail-failures"),
             stat("Active bans", j.CurrentlyBanned, "jail-active"),
             stat("Total bans", j.TotalBanned, "jail-total"));
        fill(this.source,
             h("dt", {}, "Filter"), h("dd", { class: "f2b-mono" }, j.Filter || "bans of other jails"),
             h("dt", {}, "Journal matches"),
             h("dd", {}, j.matches && j.matches.length
                 ? h("ul", { class: "f2b-list" }, j.matches.map(m => h("li", { class: "f2b-mono" }, m)))
                 : "—"));
        if (!this.fields) {
            const seconds = t => {
                const n = parseDuration(t);
                if (n === 0)
                    throw new Error("must be longer than 0");
                return n;
            };
            this.fields = [
                settingField(this.model, j, "MaxRetry", "Max retry (failures before a ban)", "u", String, t => {
                    const n = Number(t);
                    if (!/^\d+$/.test(t.trim()) || n < 1 || n > 1000000)
                        throw new Error("a whole number from 1 to 1000000");
                    return n;
                }),
                settingField(this.model, j, "FindTime", "Find time (window for failures)", "t",
                             formatDuration, seconds),
                settingField(this.model, j, "BanTime", "Ban time", "x", formatDuration,
                             t => /^(permanent|forever|-1)$/i.test(t.trim()) ? -1 : seconds(t)),
            ];
            fill(this.settings, this.fields.map(f => f.el));
        } else if (what !== "bans") {
            // A value changed elsewhere (PropertiesChanged): show it unless it is being edited.
            for (const f of this.fields)
                if (document.activeElement !== f.input)
                    f.input.value = f.toText(j[f.prop]);
        }
        this.table.update();
    }

    tick() {
        this.table.tick();
    }
}

export class BansView {
    constructor(model) {
        this.model = model;
        this.table = new BansTable(model, null);
        this.form = new BanForm(model, null);
        this.el = h("div", {}, card("Ban an address", this.form.el), card("Active bans", this.table.el));
    }

    update(what) {
        if (what !== "bans")
            this.form.update();
        this.table.update();
    }

    tick() {
        this.table.tick();
    }
}

export class HistoryView {
    constructor(model, address) {
        this.model = model;
        this.input = h("input", { class: "f2b-input f2b-mono", id: "history-address", value: address || "",
                                  placeholder: "203.0.113.7", "aria-label": "Address" });
        this.msg = h("div", { hidden: true });
        this.result = h("div", { id: "history-result" });
        this.el = h("div", {}, card("History of an address",
                                    h("form", { class: "f2b-form", onsubmit: ev => { ev.preventDefault(); this.show() } },
                                      h("label", { class: "f2b-field" }, h("span", {}, "Address"), this.input, this.msg),
                                      h("div", { class: "f2b-field f2b-field-button" },
                                        h("button", { class: "f2b-btn f2b-btn-primary", type: "submit" }, "Show"))),
                                    this.result));
        if (address)
            this.show();
    }

    async show() {
        const address = this.input.value.trim();
        const problem = address.includes("/") ? "a single address, not a prefix" : addressProblem(address);
        message(this.msg, "error", problem);
        if (problem)
            return;
        try {
            const rows = await this.model.addressHistory(address);
            const jails = [...new Set(rows.map(r => r[0]))];
            const active = [...this.model.bans.values()].filter(b => b.address === address);
            fill(this.result,
                 h("p", { id: "history-summary" }, rows.length === 0
                     ? `${address} has no recorded bans.`
                     : `${address} was banned ${rows.length} time${rows.length === 1 ? "" : "s"} in ` +
                       `${jails.join(", ")}; first ${formatTime(rows[0][1])}, last ${formatTime(rows[rows.length - 1][1])}.`),
                 active.length ? h("p", {}, `Banned now in ${active.map(b => b.jail).join(", ")}.`) : null,
                 rows.length ? h("table", { class: "f2b-table" },
                                 h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Jail"))),
                                 h("tbody", {}, rows.slice().reverse().map(([jail, t]) =>
                                     h("tr", {}, h("td", {}, formatTime(t)), h("td", {}, link(["jail", jail], jail))))))
                     : null);
        } catch (err) {
            message(this.msg, "error", describeError(err));
        }
    }

    update() {}
}
