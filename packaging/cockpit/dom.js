// A small DOM builder: h("div", {class: "x", onclick: fn}, child, "text", [more]).
// Text is always set as text (never parsed as HTML).

export function h(tag, attrs, ...children) {
    const el = tag.startsWith("svg:")
        ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
        : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false)
            continue;
        if (k.startsWith("on"))
            el.addEventListener(k.slice(2), v);
        else if (k === "dataset")
            Object.assign(el.dataset, v);
        else
            el.setAttribute(k, v === true ? "" : String(v));
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false)
            continue;
        if (Array.isArray(c))
            append(el, c);
        else
            el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
}

/** A link inside the page: `path` is a cockpit.location path (array of segments). */
export function link(path, text, attrs) {
    const href = "#/" + path.map(encodeURIComponent).join("/");
    return h("a", {
        href,
        ...attrs,
        onclick: ev => {
            ev.preventDefault();
            // eslint-disable-next-line no-undef
            cockpit.location.go(path);
        },
    }, text);
}

/** A card (PatternFly's look) with a title and a body. */
export function card(title, ...body) {
    return h("section", { class: "f2b-card" },
             title ? h("h2", { class: "f2b-card-title" }, title) : null,
             h("div", { class: "f2b-card-body" }, ...body));
}

/** An inline message: kind "error", "success" or "info". */
export function message(el, kind, text) {
    el.className = "f2b-inline f2b-inline-" + kind;
    el.textContent = text || "";
    el.hidden = !text;
}
