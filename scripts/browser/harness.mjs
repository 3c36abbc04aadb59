// The browser tests' harness (scripts/browser/tests.mjs runs the tests): the servers
// named by the environment, a test-only proxy on loopback in front of them that can
// alter responses in flight or switch the backend (a rewritten history) while the
// page's origin stays the same, headless Chromium, and the helpers every test uses.

import http from "node:http";
import { chromium } from "playwright-core";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
// ONLY (a regular expression) runs the tests whose names match: the script's
// --audit-small mode runs only the audit, against the small demo.
export const ONLY = new RegExp(process.env.ONLY || ".");
export const DEMO = env("DEMO_URL");
export const ROOT = env("REPO_ROOT");
const full = !process.env.ONLY;
export const FIXTURE = full ? env("FIXTURE_URL") : process.env.FIXTURE_URL;
export const FORK_A = full ? env("FORK_A_URL") : process.env.FORK_A_URL;
export const FORK_B = full ? env("FORK_B_URL") : process.env.FORK_B_URL;
export const KEY_FILE = full ? env("FAMILY_KEY_FILE") : process.env.FAMILY_KEY_FILE;

/** A proxy on a loopback port: forwards to `state.backend`, through `state.alter`. */
export function proxy(state) {
  const server = http.createServer((req, res) => {
    const target = new URL(req.url, state.backend);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (state.onRequest) state.onRequest(req.method, req.url, Buffer.concat(chunks));
      const headers = { ...req.headers, host: target.host };
      // A response to alter must come uncompressed; otherwise the page's own request
      // goes through as it is (so the first view is measured as a browser gets it).
      if (state.alter) delete headers["accept-encoding"];
      const up = http.request(target, { method: req.method, headers }, (upRes) => {
        const body = [];
        upRes.on("data", (c) => body.push(c));
        upRes.on("end", () => {
          let data = Buffer.concat(body);
          if (state.alter) data = state.alter(req.url, data) ?? data;
          const out = { ...upRes.headers, "content-length": data.length };
          res.writeHead(upRes.statusCode, out);
          res.end(data);
        });
      });
      up.on("error", (e) => { res.writeHead(502); res.end(String(e)); });
      up.end(Buffer.concat(chunks));
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` })));
}

const results = [];
export async function test(name, f) {
  if (!ONLY.test(name)) return;
  const started = Date.now();
  try {
    await f();
    results.push([name, "ok"]);
    console.log(`test ${name} ... ok (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, "FAILED"]);
    console.log(`test ${name} ... FAILED\n  ${e.stack || e}`);
  }
}
export function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}
export const getJSON = async (url) => (await fetch(url)).json();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
export const state = { backend: DEMO, alter: null, onRequest: null };
const { server, url: PROXY } = await proxy(state);
export { PROXY };

export async function page(options = {}) {
  const context = await browser.newContext({ viewport: { width: 360, height: 780 }, ...options });
  const p = await context.newPage();
  p.on("pageerror", (e) => console.log(`  page error: ${e.message}`));
  p.on("console", (m) => m.type() === "error" && console.log(`  console: ${m.text()}`));
  return { context, p };
}
export async function visit(p, url) {
  await p.goto(url);
  await p.waitForSelector("body[data-ready=true]", { timeout: 30000 });
}
export const yuan = (fen) => `¥${Math.floor(fen / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${String(fen % 100).padStart(2, "0")}`;
export const figureText = (p, sel) => p.$eval(sel, (el) => el.firstChild.textContent);
/** The figures' states on the page under `sel`. */
export const verifiedStates = (p, sel) => p.$$eval(`${sel} [data-verified]`, (els) => els.map((e) => `${e.dataset.figure}=${e.dataset.verified}`));
export const FAMILY = "stu-000005";

/** Closes the browser and the proxy, prints the tally and exits (1 if a test failed). */
export async function finish() {
  await browser.close();
  server.close();
  const failed = results.filter(([, r]) => r !== "ok");
  console.log(`\nbrowser tests: ${results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
}
