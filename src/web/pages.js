// The other pages: home (find a student), the pool (/pool) and the association's
// audit (/audit). Totals the server sums
// are shown as served (data-verified="false") until the in-browser audit has replayed
// the entries they come from; the charts are drawn only from verified entries.

import { establishTrust, getJSON, rememberAssociation } from "./api.js";
import { panel, shareBars } from "./charts.js";
import { t, yuan } from "./i18n.js";
import { cosignForm } from "./keys.js";
import { checkpointHistory } from "./checkpoints.js";
import { alarm, figure, h, trustBanner } from "./ui.js";

export function homePage(root) {
  const input = h("input", { type: "text", name: "ref", "aria-label": t("home"), placeholder: "stu-000000", required: true });
  root.replaceChildren(
    h("h1", {}, t("title")),
    h("form", { class: "find", onsubmit: (e) => { e.preventDefault(); location.href = `/students/${encodeURIComponent(input.value.trim())}`; } },
      h("label", {}, t("home"), " ", input), h("button", { type: "submit" }, t("open"))),
    h("p", {}, h("a", { href: "/pool" }, t("pool")), " · ", h("a", { href: "/audit" }, t("audit"))),
  );
}

function cards(items) {
  return h("div", { class: "cards" }, items.map(([label, value, verified, name]) => h("div", { class: "card" }, label, h("span", { class: "big" }, figure(value, verified, name)))));
}

/**
 * Runs the audit worker; `onProgress(done, size)`. Resolves to its result, remembering
 * the audited checkpoint (next audit demands consistency from it) and the association
 * keys it read from verified entries (to check cosignatures on the family page).
 */
export function runAudit(trust, summarize, onProgress) {
  const lastKey = `ll.audit.${trust.info.origin}`;
  const last = JSON.parse(localStorage.getItem(lastKey) || "null");
  const worker = new Worker("/web/audit-worker.js", { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = (ev) => {
      const m = ev.data;
      if (m.progress) onProgress(m.progress.done, m.progress.size);
      if (m.error) { worker.terminate(); reject(Object.assign(new Error(m.error.message), { code: m.error.code })); }
      if (m.done) {
        worker.terminate();
        localStorage.setItem(lastKey, JSON.stringify({ size: m.done.size, root: m.done.root }));
        for (const [name, vkey] of Object.entries(m.done.summary ? m.done.summary.associations : {})) rememberAssociation(name, vkey);
        resolve(m.done);
      }
    };
    worker.postMessage({ vkey: trust.vkey, origin: trust.info.origin, last, summarize });
  });
}

function auditControls(trust, summarize, onDone) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": t("auditRun") });
  const out = h("div", { role: "status", "data-audit": "idle" });
  const button = h("button", {
    type: "button", "data-run-audit": "", disabled: !trust.ok,
    onclick: async () => {
      button.disabled = true;
      out.dataset.audit = "running";
      try {
        const r = await runAudit(trust, summarize, (done, size) => { bar.max = size; bar.value = done; });
        out.dataset.audit = "pass";
        out.dataset.sigsPerSec = r.sigsPerSec;
        out.dataset.signatures = r.signatures;
        out.dataset.seconds = r.seconds.toFixed(1);
        out.replaceChildren(figure(t("auditDone", { n: r.size, s: r.sigsPerSec }), true, "audit"));
        onDone(r);
      } catch (e) {
        out.dataset.audit = "fail";
        out.replaceChildren(alarm(e.code, t("auditFail", { e: e.message })));
      }
    },
  }, t("auditRun"));
  return h("div", {}, button, bar, out);
}

/** Draws the verified summary's charts into `charts`; marks the served totals it confirms. */
function drawSummary(root, charts, pool, sum) {
  const districts = Object.entries(sum.byDistrict).map(([label, v]) => ({ label, whole: v.owed, part: v.madeGood })).sort((a, b) => b.whole - a.whole);
  const subjects = Object.entries(sum.bySubject).map(([label, v]) => ({ label, whole: v.pledged, part: v.delivered })).sort((a, b) => b.whole - a.whole);
  charts.replaceChildren(
    h("h2", {}, t("byDistrict")),
    shareBars(districts, { title: t("byDistrict"), wholeClass: "bar-owed", partClass: "bar-good", wholeLabel: t("owed"), partLabel: t("madeGood") }),
    h("h2", {}, t("bySubject")),
    shareBars(subjects, { title: t("bySubject"), wholeClass: "bar-pledged", partClass: "bar-delivered", wholeLabel: t("pledged"), partLabel: t("delivered") }),
    h("h2", {}, t("pool")),
    panel(sum.timeline.map(([i, p]) => [i, p]), { title: t("pledged"), cls: "bar-pledged", xLabel: t("entries") }),
    panel(sum.timeline.map(([i, , d]) => [i, d]), { title: t("delivered"), cls: "bar-delivered", xLabel: t("entries") }),
  );
  for (const [name, value, served] of [["pledged", sum.pledged, "pledged"], ["delivered", sum.delivered, "delivered"], ["owed", sum.owed, "claims_value"]]) {
    const el = root.querySelector(`[data-figure="${name}"]`);
    if (el && pool) el.replaceWith(figure(yuan(value), value === pool[served], name));
  }
}

export async function poolPage(root) {
  const trust = await establishTrust();
  const pool = (await getJSON("/v1/pool")).pool.object;
  const charts = h("div", {});
  const draw = (r) => drawSummary(root, charts, pool, r.summary);
  root.replaceChildren(
    trustBanner(trust),
    h("h1", {}, t("pool")),
    cards([[t("pledged"), yuan(pool.pledged), false, "pledged"], [t("reserved"), yuan(pool.reserved), false, "reserved"], [t("delivered"), yuan(pool.delivered), false, "delivered"], [t("owed"), yuan(pool.claims_value), false, "owed"]]),
    auditControls(trust, true, draw),
    charts,
  );
}

export async function auditPage(root) {
  const trust = await establishTrust();
  const pool = await getJSON("/v1/pool").then((a) => a.pool.object).catch(() => null);
  const charts = h("div", {});
  root.replaceChildren(
    trustBanner(trust),
    h("h1", {}, t("audit")),
    pool ? cards([[t("pledged"), yuan(pool.pledged), false, "pledged"], [t("delivered"), yuan(pool.delivered), false, "delivered"], [t("owed"), yuan(pool.claims_value), false, "owed"], [t("coverage"), `${((pool.claims_consumed / Math.max(1, pool.claims_value)) * 100).toFixed(1)}%`, false, "coverage"]]) : null,
    h("h2", {}, t("checkpoints")),
    h("pre", { class: "checkpoint" }, trust.note ? trust.note.body : ""),
    checkpointHistory(trust),
    auditControls(trust, true, (r) => drawSummary(root, charts, pool, r.summary)),
    charts,
    cosignForm(trust),
  );
}
