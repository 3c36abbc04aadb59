// The checkpoint history on /audit: the checkpoints the log signed (GET /v1/checkpoints,
// a page at a time) with the associations' cosignatures. Each is checked here: the
// operator's signature under the pinned key, each cosignature under the association's
// key from the verified genesis, and a consistency proof from it to the checkpoint this
// visit trusts (an older checkpoint that is not a prefix of today's is an alarm).

import { getJSON, knownAssociations, proveInTrusted, verifiedGenesis } from "./api.js";
import { t } from "./i18n.js";
import { alarm, figure, h, table } from "./ui.js";
import { verifyCheckpoint, verifyCosignatures } from "./verify.js";

/** How far back the first page starts: the checkpoints of the last entries. */
const FIRST_PAGE_ENTRIES = 32;

/** One history row checked: signature, cosignatures and consistency with the trusted note. */
async function checkRow(trust, row) {
  try {
    const note = await verifyCheckpoint(row.checkpoint, trust.vkey, trust.info.origin);
    if (note.size !== row.size) throw Object.assign(new Error("a checkpoint of another size"), { code: "checkpoint_size_mismatch" });
    await proveInTrusted(trust, note.size, note.root);
    const cosigs = await verifyCosignatures(note, trust.operatorName, knownAssociations());
    return { row, note, cosigs, ok: true };
  } catch (e) {
    return { row, cosigs: [], ok: false, error: e };
  }
}

function cosigCell(cosigs) {
  if (cosigs.length === 0) return h("span", { class: "muted" }, t("noCosignature"));
  return h("span", {}, cosigs.map((c) => h("span", {
    class: c.state === "verified" ? "cosig ok" : "cosig bad", "data-cosig": c.state, "data-cosigner": c.name,
  }, `${c.name}${c.state === "verified" ? " ✓" : c.state === "unknown_key" ? ` (${t("cosigNotChecked")})` : " ✗"} `)));
}

function rows(checked) {
  return checked.map((c) => [{ "data-checkpoint": c.row.size }, [
    figure(String(c.row.size), c.ok, "checkpoint-size", c.error ? c.error.message : undefined),
    h("code", {}, c.note ? `${c.note.rootB64.slice(0, 12)}…` : "—"),
    cosigCell(c.cosigs),
  ]]);
}

/**
 * The history section: loads the first page when shown, and the next one on request.
 * `data-history="done"` on the section once a page is checked (tests wait on it).
 */
export function checkpointHistory(trust) {
  const box = h("section", { class: "history", "aria-labelledby": "history-h", "data-history": "loading" },
    h("h2", { id: "history-h" }, t("checkpointHistory")));
  if (!trust.ok) {
    box.dataset.history = "done";
    return box;
  }
  const body = h("div", {});
  const more = h("button", { type: "button", hidden: true, "data-history-more": "" }, t("moreCheckpoints"));
  box.append(body, more);
  const checked = [];
  const load = async (from) => {
    box.dataset.history = "loading";
    more.hidden = true;
    try {
      if (checked.length === 0) await verifiedGenesis(trust); // the associations' keys
      const page = await getJSON(`/v1/checkpoints?from=${from}`);
      for (const row of page.checkpoints) checked.push(await checkRow(trust, row));
      const failures = checked.filter((c) => !c.ok);
      body.replaceChildren(
        ...failures.slice(0, 3).map((c) => alarm(c.error.code || "error", `${c.row.size}: ${c.error.message}`)),
        table([t("treeSize"), t("root"), t("cosignedBy")], rows(checked)),
      );
      if (page.next !== null) {
        more.hidden = false;
        more.onclick = () => load(page.next);
      }
    } catch (e) {
      body.append(alarm(e.code || "error", e.message));
    }
    box.dataset.history = "done";
  };
  load(Math.max(1, trust.note.size - FIRST_PAGE_ENTRIES + 1));
  return box;
}
