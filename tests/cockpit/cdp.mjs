// A minimal Chrome DevTools Protocol driver for the Cockpit page tests, run with Debian's
// Node (`node --experimental-websocket cdp.mjs WS_URL`; no npm package, no browser download).
// Node 20 has a WebSocket client behind that flag (22 without it); on Node 18, which has
// none, the small client below (RFC 6455 text frames over node:http's upgrade) is used.
//
// It opens one tab in the headless Chromium behind WS_URL and then reads one JSON command per
// line on stdin, answering each with one JSON line on stdout:
//   {"cmd":"goto","url":U}                          navigate; wait for load (or the #fragment change)
//   {"cmd":"eval","expr":E}                         value of E (promises are awaited)
//   {"cmd":"wait","expr":E,"timeout_ms":N}          until E is truthy (checked on each DOM change);
//                                                   fails if the page navigates away meanwhile
//   {"cmd":"click","selector":S}                    a real mouse click in the middle of S
//   {"cmd":"type","selector":S,"text":T}            focus S, clear it, type T as keyboard input
//   {"cmd":"screenshot","path":P}                   PNG of the whole page
//   {"cmd":"newtab"}                                continue in a new tab (cookies kept)
//   {"cmd":"quit"}
// Answers: {"ok":true,"value":…} or {"ok":false,"error":…}; "errors" lists JavaScript
// exceptions the page threw since the previous answer.

import { createInterface } from "node:readline";
import { writeFileSync } from "node:fs";
import http from "node:http";
import crypto from "node:crypto";

/** Just what this driver needs of a WebSocket client: text messages, open/message/error. */
class SmallWebSocket extends EventTarget {
    constructor(url) {
        super();
        const u = new URL(url);
        this.buf = Buffer.alloc(0);
        this.parts = [];
        const req = http.request({
            host: u.hostname, port: u.port, path: u.pathname,
            headers: {
                Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": crypto.randomBytes(16).toString("base64"),
            },
        });
        req.on("upgrade", (_res, socket, head) => {
            this.socket = socket;
            this.buf = head;
            socket.on("data", d => { this.buf = Buffer.concat([this.buf, d]); this.parse() });
            this.dispatchEvent(new Event("open"));
            this.parse();
        });
        req.on("error", e => {
            const ev = new Event("error");
            ev.message = e.message;
            this.dispatchEvent(ev);
        });
        req.end();
    }

    parse() {
        for (;;) {
            const b = this.buf;
            if (b.length < 2)
                return;
            const fin = b[0] & 0x80;
            const op = b[0] & 0x0f;
            let len = b[1] & 0x7f;
            let off = 2;
            if (len === 126) {
                if (b.length < 4) return;
                len = b.readUInt16BE(2);
                off = 4;
            } else if (len === 127) {
                if (b.length < 10) return;
                len = Number(b.readBigUInt64BE(2));
                off = 10;
            }
            if (b.length < off + len)
                return;
            const payload = b.subarray(off, off + len);
            this.buf = b.subarray(off + len);
            if (op === 8) {
                this.socket.end();
                return;
            }
            if (op === 9) {
                this.frame(10, payload);
            } else if (op <= 2) {
                this.parts.push(payload);
                if (fin) {
                    const ev = new Event("message");
                    ev.data = Buffer.concat(this.parts).toString("utf8");
                    this.parts = [];
                    this.dispatchEvent(ev);
                }
            }
        }
    }

    // Client frames are masked (RFC 6455 5.3).
    frame(op, data) {
        const n = data.length;
        let head;
        if (n < 126) {
            head = Buffer.from([0x80 | op, 0x80 | n]);
        } else if (n < 65536) {
            head = Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 255]);
        } else {
            head = Buffer.alloc(10);
            head[0] = 0x80 | op;
            head[1] = 0x80 | 127;
            head.writeBigUInt64BE(BigInt(n), 2);
        }
        const mask = crypto.randomBytes(4);
        const body = Buffer.from(data);
        for (let i = 0; i < n; i++) body[i] ^= mask[i & 3];
        this.socket.write(Buffer.concat([head, mask, body]));
    }

    send(text) {
        this.frame(1, Buffer.from(text, "utf8"));
    }

    close() {
        if (this.socket) {
            this.frame(8, Buffer.alloc(0));
            this.socket.end();
        }
    }
}

const Client = typeof WebSocket === "function" && !process.env.F2B_CDP_SMALL_WS ? WebSocket : SmallWebSocket;
const ws = new Client(process.argv[2]);
let nextId = 1;
const pending = new Map();
const waiters = [];
let session = null;
let pageErrors = [];

ws.addEventListener("message", ev => {
    const msg = JSON.parse(ev.data);
    if (msg.id && pending.has(msg.id)) {
        const { resolve, reject } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error)
            reject(new Error(msg.error.message + (msg.error.data ? ": " + msg.error.data : "")));
        else
            resolve(msg.result);
        return;
    }
    // A page that asks before it is left (beforeunload) or alerts would block headless
    // navigation: accept every dialog.
    if (msg.method === "Page.javascriptDialogOpening") {
        send("Page.handleJavaScriptDialog", { accept: true }).catch(() => {});
    }
    if (msg.method === "Runtime.exceptionThrown") {
        const d = msg.params.exceptionDetails;
        pageErrors.push((d.exception && d.exception.description) || d.text);
    }
    for (const w of waiters.splice(0)) {
        if (!w(msg))
            waiters.push(w);
    }
});

function send(method, params = {}, toSession = true) {
    const id = nextId++;
    const msg = { id, method, params };
    if (toSession && session)
        msg.sessionId = session;
    ws.send(JSON.stringify(msg));
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

function event(name) {
    return new Promise(resolve => waiters.push(m => (m.method === name ? (resolve(m.params), true) : false)));
}

async function evaluate(expr) {
    const r = await send("Runtime.evaluate", { expression: expr, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails)
        throw new Error((r.exceptionDetails.exception && r.exceptionDetails.exception.description) || r.exceptionDetails.text);
    return r.result.value;
}

// Settles to {value} or {error}, never rejects (no unhandled rejection can end the driver).
const settle = p => p.then(value => ({ value }), error => ({ error }));

// `p`, unless `ms` pass or (with `navigation`) the page navigates away first: an evaluation
// in a page that is replaced never answers.
async function guarded(p, ms, what, navigation = true) {
    let timer;
    const navigated = navigation
        ? event("Runtime.executionContextsCleared").then(() => ({ error: new Error("the page navigated away during " + what) }))
        : new Promise(() => {});
    const late = new Promise(resolve => { timer = setTimeout(() => resolve({ error: new Error("no answer within " + ms + " ms: " + what) }), ms) });
    const r = await Promise.race([settle(p), navigated, late]);
    clearTimeout(timer);
    if (r.error)
        throw r.error;
    return r.value;
}

// Resolves when `expr` is truthy: checked now and after every DOM mutation, in the page.
function waitExpr(expr, timeout) {
    return guarded(evaluate(`new Promise((resolve, reject) => {
        const check = () => { try { return !!(${expr}); } catch (e) { return false; } };
        if (check()) return resolve(true);
        const obs = new MutationObserver(() => { if (check()) { obs.disconnect(); clearTimeout(t); resolve(true); } });
        obs.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
        const t = setTimeout(() => { obs.disconnect(); reject(new Error("timed out after ${timeout} ms waiting for: " + ${JSON.stringify(expr)})); }, ${timeout});
    })`), timeout + 1000, "wait for " + expr);
}

async function center(selector) {
    const box = await evaluate(`(() => {
        const el = document.querySelector(${JSON.stringify(selector)});
        if (!el) return null;
        el.scrollIntoView({ block: "center" });
        const r = el.getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
    })()`);
    if (!box)
        throw new Error("no element matches " + selector);
    return box;
}

async function run(c) {
    switch (c.cmd) {
    case "goto": {
        // A new document fires load; a change of the #fragment only navigates within it.
        const loaded = Promise.race([event("Page.loadEventFired"), event("Page.navigatedWithinDocument")]);
        await send("Page.navigate", { url: c.url });
        await guarded(loaded, 30000, "load " + c.url, false);
        return null;
    }
    case "eval":
        return guarded(evaluate(c.expr), 15000, "eval " + c.expr);
    case "wait":
        return waitExpr(c.expr, c.timeout_ms || 10000);
    case "click": {
        const { x, y } = await center(c.selector);
        for (const type of ["mouseMoved", "mousePressed", "mouseReleased"])
            await send("Input.dispatchMouseEvent", { type, x, y, button: "left", clickCount: 1 });
        return null;
    }
    case "type": {
        const { x, y } = await center(c.selector);
        for (const type of ["mousePressed", "mouseReleased"])
            await send("Input.dispatchMouseEvent", { type, x, y, button: "left", clickCount: 1 });
        await evaluate(`document.querySelector(${JSON.stringify(c.selector)}).select()`);
        await send("Input.insertText", { text: c.text });
        return null;
    }
    case "screenshot": {
        const r = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
        writeFileSync(c.path, Buffer.from(r.data, "base64"));
        return null;
    }
    case "newtab":
        await newTab();
        return null;
    case "quit":
        ws.close();
        process.exit(0);
    }
    throw new Error("unknown command " + c.cmd);
}

let target = null;

// A fresh tab (same browser profile: cookies stay), the previous one closed.
async function newTab() {
    const old = target;
    ({ targetId: target } = await send("Target.createTarget", { url: "about:blank" }, false));
    ({ sessionId: session } = await send("Target.attachToTarget", { targetId: target, flatten: true }, false));
    await send("Page.enable");
    await send("Runtime.enable");
    await send("Emulation.setDeviceMetricsOverride", { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false });
    if (old)
        await send("Target.closeTarget", { targetId: old }, false);
}

ws.addEventListener("open", async () => {
    await newTab();
    console.log(JSON.stringify({ ok: true, value: "ready" }));
    const lines = createInterface({ input: process.stdin });
    for await (const line of lines) {
        if (!line.trim())
            continue;
        if (process.env.F2B_CDP_DEBUG)
            process.stderr.write("cdp> " + line + "\n");
        let answer;
        try {
            answer = { ok: true, value: await guarded(run(JSON.parse(line)), 60000, line, false) };
        } catch (e) {
            answer = { ok: false, error: String(e && e.message ? e.message : e) };
        }
        answer.errors = pageErrors;
        pageErrors = [];
        console.log(JSON.stringify(answer));
    }
    ws.close();
});
ws.addEventListener("error", e => {
    console.log(JSON.stringify({ ok: false, error: "websocket: " + (e.message || "error") }));
    process.exit(1);
});
