// The bans-per-hour chart of the overview: an SVG bar chart of the last 24 hours, drawn
// from Manager1.GetBanHistory (and extended live by Banned signals).

import { h } from "./dom.js";

const HOUR = 3600 * 1000;
const W = 720;
const H = 180;
const PAD = { left: 36, right: 8, top: 10, bottom: 24 };

/** Count bans per hour: 24 buckets, the last one being the current hour. */
export function bucketize(history, nowMs) {
    const last = Math.floor(nowMs / HOUR);
    const counts = new Array(24).fill(0);
    for (const [, , startUsec] of history) {
        const i = 23 - (last - Math.floor(startUsec / 1000 / HOUR));
        if (i >= 0 && i < 24)
            counts[i]++;
    }
    return { counts, firstHour: last - 23 };
}

export function chart(history, nowMs) {
    const { counts, firstHour } = bucketize(history, nowMs);
    const max = Math.max(1, ...counts);
    const top = max <= 5 ? max : Math.ceil(max / 5) * 5;
    const iw = W - PAD.left - PAD.right;
    const ih = H - PAD.top - PAD.bottom;
    const bw = iw / 24;
    const svg = h("svg:svg", {
        class: "f2b-chart",
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        "aria-label": `Bans per hour over the last 24 hours: ${counts.reduce((a, b) => a + b, 0)} in all`,
    });
    // Whole numbers only: the middle line only where top / 2 is one.
    for (const frac of top % 2 === 0 ? [0, 0.5, 1] : [0, 1]) {
        const y = PAD.top + ih - frac * ih;
        svg.append(h("svg:line", { class: "f2b-chart-grid", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
        svg.append(h("svg:text", { class: "f2b-chart-label", x: PAD.left - 6, y: y + 4, "text-anchor": "end" },
                     String(Math.round(frac * top))));
    }
    counts.forEach((n, i) => {
        const hour = new Date((firstHour + i) * HOUR);
        const bh = (n / top) * ih;
        const x = PAD.left + i * bw + 2;
        const label = `${hour.getHours().toString().padStart(2, "0")}:00`;
        svg.append(h("svg:rect", {
            class: "f2b-chart-bar",
            x, y: PAD.top + ih - bh, width: bw - 4, height: Math.max(bh, n ? 1 : 0),
            "data-count": n,
        }, h("svg:title", {}, `${label}: ${n} ban${n === 1 ? "" : "s"}`)));
        if (i % 3 === 2)
            svg.append(h("svg:text", { class: "f2b-chart-label", x: x + (bw - 4) / 2, y: H - 6, "text-anchor": "middle" }, label));
    });
    return svg;
}
