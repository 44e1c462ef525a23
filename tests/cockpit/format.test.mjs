// node --test: the page's parsers and formatters (packaging/cockpit/format.js, chart.js's
// bucketing), which decide what the ban form sends and what the chart shows.

import { test } from "node:test";
import assert from "node:assert/strict";

import { addressProblem, formatDuration, parseDuration, remainingSeconds, MAX_SECONDS } from "../../packaging/cockpit/format.js";

test("addresses and prefixes f2bd accepts pass", () => {
    for (const a of ["203.0.113.9", "2001:db8::1", "2001:db8::/64", "::ffff:192.0.2.1", "::1", "::",
        "10.0.0.0/8", "192.0.2.0/24", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8", "2001::/16"])
        assert.equal(addressProblem(a), null, a);
});

test("what f2bd refuses is refused with a reason", () => {
    const cases = {
        "": "enter an address",
        "1.2.3": "not an IPv4 or IPv6",
        "256.1.1.1": "not an IPv4 or IPv6",
        "01.2.3.4": "not an IPv4 or IPv6",
        "2001:db8::1::2": "not an IPv4 or IPv6",
        "1:2:3:4:5:6:7:8:9": "not an IPv4 or IPv6",
        "example.org": "not an IPv4 or IPv6",
        "10.0.0.1/8": "host bits",
        "2001:db8::1/64": "host bits",
        "1.0.0.0/4": "shorter than /8",
        "::/0": "shorter than /16",
        "10.0.0.0/33": "not a prefix length",
        "10.0.0.0/8/9": "more than one",
    };
    for (const [a, why] of Object.entries(cases))
        assert.match(addressProblem(a) || "", new RegExp(why), a);
});

test("durations as admins type them", () => {
    assert.equal(parseDuration(""), 0);
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration("600"), 600);
    assert.equal(parseDuration("10m"), 600);
    assert.equal(parseDuration("1h30m"), 5400);
    assert.equal(parseDuration("1h 30m"), 5400);
    assert.equal(parseDuration("2d"), 172800);
    assert.equal(parseDuration("1w"), 604800);
    assert.equal(parseDuration(String(MAX_SECONDS)), MAX_SECONDS);
    for (const bad of ["ten minutes", "10q", "m", "1h x", "-5"])
        assert.throws(() => parseDuration(bad), /not a duration/, bad);
    assert.throws(() => parseDuration(String(MAX_SECONDS + 1)), /ten years/);
});

test("durations and remaining times as the page shows them", () => {
    assert.equal(formatDuration(5400), "1h 30m");
    assert.equal(formatDuration(90061), "1d 1h");
    assert.equal(formatDuration(59), "59s");
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(-1), "permanent");
    assert.equal(remainingSeconds(0, 1000), -1);
    assert.equal(remainingSeconds(61_000_000, 1000), 60);
    assert.equal(remainingSeconds(1_000_000, 5000), 0);
});
