// Entry point: routing between the views (cockpit.location: #/, #/bans, #/jail/NAME,
// #/history/ADDRESS), the connection state, and a one-second clock for remaining times.

/* global cockpit */

import { Model } from "./model.js";
import { Overview, JailPage, BansView, HistoryView } from "./views.js";
import { fill, h } from "./dom.js";

const model = new Model();
const main = document.getElementById("view");
const alertBox = document.getElementById("alert");
const version = document.getElementById("version");
let view = null;
let route = null;

function viewFor(path) {
    switch (path[0]) {
    case "bans":
        return new BansView(model);
    case "jail":
        return new JailPage(model, path[1] || "");
    case "history":
        return new HistoryView(model, path[1] || "");
    default:
        return new Overview(model);
    }
}

function navigate() {
    const path = cockpit.location.path;
    const key = path.join("/");
    if (key === route)
        return;
    route = key;
    view = viewFor(path);
    fill(main, view.el);
    for (const a of document.querySelectorAll("nav a[data-view]"))
        a.classList.toggle("f2b-tab-active", a.dataset.view === (path[0] === "jail" || !path[0] ? "overview" : path[0]));
    view.update("all");
}

function status() {
    version.textContent = model.version ? "f2b " + model.version : "";
    let text = "";
    if (model.running === false)
        text = "f2bd is not running: start it with systemctl start f2b.";
    else if (model.loadError)
        text = "Cannot read from f2bd: " + model.loadError;
    fill(alertBox, text ? h("span", {}, text) : null);
    alertBox.hidden = !text;
    document.body.dataset.loaded = model.loadError === null && model.running ? "yes" : "no";
}

model.listen(what => {
    status();
    if (view)
        view.update(what);
});

for (const a of document.querySelectorAll("nav a[data-view]")) {
    a.addEventListener("click", ev => {
        ev.preventDefault();
        cockpit.location.go(a.dataset.view === "overview" ? [] : [a.dataset.view]);
    });
}

cockpit.addEventListener("locationchanged", navigate);
setInterval(() => view && view.tick && view.tick(), 1000);
navigate();
model.load();
