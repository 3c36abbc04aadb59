// The family's key on this device and the actions it signs: create or import a key,
// show its verifier key for registration, and confirm or dispute a lesson or decline an
// allocation (sign.js builds, signs, posts and checks the receipt).

import { t } from "./i18n.js";
import { cosign, createKey, entryPayload, importKey, listKeys, signEnvelope, submit } from "./sign.js";
import { alarm, h } from "./ui.js";
import { generate } from "./vendor/lean-qr/index.mjs";
import { toSvg } from "./vendor/lean-qr/svg.mjs";

/** The verifier key as a QR code (an inline SVG element), for the registration desk. */
function qr(text) {
  const svg = toSvg(generate(text), document, { on: "black", off: "white", pad: 4, width: 220, height: 220 });
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", text);
  svg.classList.add("qr");
  return svg;
}

function download(name, text) {
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "application/x-pem-file" })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/** The key panel: the key named `ref` on this device, or how to get one. */
export function keyPanel(ref, trust) {
  const box = h("section", { class: "keys", "aria-labelledby": "keys-h" }, h("h2", { id: "keys-h" }, t("keyTitle")));
  const body = h("div", {});
  box.append(body);
  const show = async () => {
    const key = (await listKeys()).find((k) => k.name === ref);
    if (key) {
      body.replaceChildren(h("p", {}, t("vkeyHint")), h("code", { class: "vkey", "data-vkey": key.vkey }, key.vkey), qr(key.vkey));
      return;
    }
    const file = h("input", { type: "file", accept: ".key,.pem", "aria-label": t("importKey"), "data-import-key": "" });
    file.addEventListener("change", async () => {
      try {
        await importKey(ref, await file.files[0].text());
        await show();
      } catch (e) {
        body.append(alarm(e.code || "import_failed", e.message));
      }
    });
    body.replaceChildren(
      h("p", {}, t("noKey")),
      h("button", {
        type: "button", "data-create-key": "",
        onclick: async () => {
          try {
            const { backup } = await createKey(ref);
            download(`${ref}.key`, backup);
            await show();
          } catch (e) {
            body.append(alarm(e.code || "key_creation_failed", e.message));
          }
        },
      }, t("createKey")),
      h("label", { class: "import" }, t("importKey"), " ", file),
    );
  };
  show().catch((e) => body.append(alarm(e.code || "keys_unavailable", e.message)));
  return box;
}

/** The fields an entry of `kind` needs beyond its subject (sign.js entryPayload). */
function extraFields(kind, subject, more) {
  // Reasons are codes (schemas/README.md §10.4): the family's button says the lesson
  // was not taught.
  if (kind === "lesson_disputed") return { dispute: `d-${subject}`, reason: "not_taught" };
  return more ? more() : {};
}

/**
 * Buttons that sign and submit entries: `actions` are [kind, subject, label, more],
 * where `subject` is an id or a function that reads it when pressed, and `more` an
 * optional function giving the kind's other fields.
 */
export function actionButtons(trust, ref, actions) {
  const status = h("div", { class: "status", role: "status" });
  const buttons = actions.map(([kind, subjectOf, label, more]) => h("button", {
    type: "button", "data-action": kind, "data-subject": typeof subjectOf === "string" ? subjectOf : null, disabled: !trust.ok,
    onclick: async (ev) => {
      ev.target.disabled = true;
      status.replaceChildren(t("sending"));
      try {
        const subject = typeof subjectOf === "string" ? subjectOf : subjectOf();
        const payload = entryPayload(trust.info, kind, subject, extraFields(kind, subject, more));
        const receipt = await submit(trust, await signEnvelope(ref, payload));
        status.replaceChildren(h("span", { "data-receipt": receipt.index }, t("sent", { i: receipt.index })));
      } catch (e) {
        status.replaceChildren(alarm(e.code || "submit_failed", e.message));
      }
      ev.target.disabled = false;
    },
  }, label));
  return h("div", { class: "actions" }, ...buttons, status);
}

/** An association's form: import its key file, then cosign the verified checkpoint. */
export function cosignForm(trust) {
  const name = h("input", { type: "text", name: "association", placeholder: "assoc-…", "data-cosign-name": "" });
  const file = h("input", { type: "file", accept: ".key,.pem", "aria-label": t("importKey"), "data-cosign-key": "" });
  const status = h("div", { role: "status" });
  file.addEventListener("change", async () => {
    try {
      await importKey(name.value.trim(), await file.files[0].text());
      status.replaceChildren(h("span", { "data-key-imported": "" }, "✓"));
    } catch (e) {
      status.replaceChildren(alarm(e.code || "import_failed", e.message));
    }
  });
  const button = h("button", {
    type: "button", "data-cosign": "", disabled: !trust.ok,
    onclick: async () => {
      try {
        const note = await cosign(trust, name.value.trim());
        status.replaceChildren(h("span", { "data-cosigned": note.size }, t("cosigned", { n: note.size })));
      } catch (e) {
        status.replaceChildren(alarm(e.code || "cosign_failed", e.message));
      }
    },
  }, t("cosign"));
  return h("section", {}, h("h2", {}, t("cosign")), h("label", {}, `${t("association")} `, name), " ",
    h("label", {}, t("importKey"), " ", file), button, status);
}
