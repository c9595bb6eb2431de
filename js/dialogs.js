// @ts-check
/** Modal dialogs inside the widget root (so JupyterLab's theme variables apply). */
import { h, replaceChildren } from "./dom.js";
import { SHORTCUTS } from "./keyboard.js";

/**
 * @typedef {{label: string, kind?: "primary"|"danger"|"", action?: () => (Promise<boolean|void>|boolean|void)}} Button
 * @typedef {{close: () => void, setError: (text: string) => void, box: HTMLElement, buttons: HTMLButtonElement[]}} Dialog
 * @typedef {{root: HTMLElement, dialog?: Dialog|null}} DialogHost
 */

/**
 * Open a dialog. A button's action may return `false` to keep the dialog open; if it throws,
 * the error is shown inside the dialog (and the dialog stays open).
 * @param {DialogHost} host
 * @param {{title: string, body: import("./dom.js").Child, buttons?: Button[], className?: string}} spec
 * @returns {Dialog}
 */
export function openDialog(host, { title, body, buttons = [{ label: "Close" }], className = "" }) {
  host.dialog?.close();
  const error = h("div", { class: "jl-dialog-error", attrs: { role: "alert" } });
  /** @type {HTMLButtonElement[]} */
  const buttonEls = [];
  const footer = h("div", { class: "jl-dialog-buttons" });
  const box = h(
    "div",
    { class: `jl-dialog ${className}`, attrs: { role: "dialog", "aria-modal": "true", "aria-label": title } },
    h("div", { class: "jl-dialog-title", text: title }),
    h("div", { class: "jl-dialog-body" }, body),
    error,
    footer,
  );
  const overlay = h("div", { class: "jl-overlay" }, box);
  overlay.addEventListener("mousedown", (ev) => {
    if (ev.target === overlay) dialog.close();
  });
  /** @type {Dialog} */
  const dialog = {
    box,
    buttons: buttonEls,
    close() {
      overlay.remove();
      if (host.dialog === dialog) host.dialog = null;
      host.root.focus();
    },
    setError(text) {
      error.textContent = text;
    },
  };
  for (const spec of buttons) {
    const btn = /** @type {HTMLButtonElement} */ (
      h("button", { class: `jl-btn ${spec.kind ? `jl-btn-${spec.kind}` : ""}`, type: "button", text: spec.label })
    );
    btn.addEventListener("click", async () => {
      if (!spec.action) return dialog.close();
      for (const b of buttonEls) b.disabled = true;
      try {
        const keep = await spec.action();
        if (keep !== false) dialog.close();
      } catch (err) {
        dialog.setError(String(/** @type {any} */ (err)?.message ?? err));
      } finally {
        for (const b of buttonEls) b.disabled = false;
      }
    });
    buttonEls.push(btn);
    footer.appendChild(btn);
  }
  host.root.appendChild(overlay);
  host.dialog = dialog;
  const first = box.querySelector("input:not([type=radio]):not([type=checkbox]), select");
  /** @type {HTMLElement} */ (first ?? buttonEls[buttonEls.length - 1] ?? box).focus?.();
  return dialog;
}

/** The rule label names follow (same as the kernel's). */
export const LABEL_RE = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Why `name` is not a valid label name, or null when it is.
 * @param {string} name
 */
export function labelNameProblem(name) {
  if (!name) return "type a label name";
  if (name.length > 32) return `too long (${name.length} characters): at most 32`;
  if (!LABEL_RE.test(name)) return "only letters, digits, '-' and '_' (no spaces)";
  return null;
}

/**
 * Rename (or merge) a label.
 * @param {DialogHost & {call: import("./api.js").Call}} ctx
 * @param {string} old
 * @param {{name: string, count: number}[]} labels
 */
export function renameDialog(ctx, old, labels) {
  const input = /** @type {HTMLInputElement} */ (h("input", { class: "jl-input", type: "text", value: old, attrs: { "aria-label": "new label name" } }));
  const hint = h("div", { class: "jl-hint" });
  const count = labels.find((l) => l.name === old)?.count ?? 0;
  const update = () => {
    const name = input.value.trim();
    const problem = name === old ? null : labelNameProblem(name);
    const target = labels.find((l) => l.name === name && name !== old);
    hint.className = `jl-hint ${problem || target ? "jl-warn" : ""}`;
    if (problem) hint.textContent = problem;
    else if (target)
      hint.textContent = `"${name}" already exists: the ${count} image(s) labeled "${old}" will be merged into "${name}" (${target.count} image(s) have it now). "${old}" disappears.`;
    else hint.textContent = `${count} image(s) labeled "${old}" will carry the new name.`;
    dialog.buttons[1].textContent = target ? "Merge" : "Rename";
    dialog.buttons[1].disabled = Boolean(problem) || name === old;
  };
  input.addEventListener("input", update);
  const dialog = openDialog(ctx, {
    title: `Rename label "${old}"`,
    body: [h("label", { class: "jl-field" }, "New name", input), hint],
    buttons: [
      { label: "Cancel" },
      {
        label: "Rename",
        kind: "primary",
        action: async () => {
          await ctx.call("rename_label", { old, new: input.value.trim() });
        },
      },
    ],
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !dialog.buttons[1].disabled) dialog.buttons[1].click();
  });
  update();
  input.select();
  return dialog;
}

/**
 * Delete a label, in one of three modes, after showing how many images each touches.
 * @param {DialogHost & {call: import("./api.js").Call}} ctx
 * @param {string} name
 */
export async function deleteLabelDialog(ctx, name) {
  const { reply } = await ctx.call("label_impact", { name });
  const n = reply.images;
  const only = reply.only;
  const modes = [
    ["label", `Delete the label only: ${n} image(s) lose "${name}" and stay in the dataset.`],
    ["samples", `Delete the label and the ${only} image(s) that have only this label (source files are kept).`],
    [
      "sources",
      `Delete the label, the ${only} image(s) that have only this label, and their source files. Files cannot be recovered and other versions that use them break.`,
    ],
  ];
  const radios = modes.map(([value, text], i) =>
    h("label", { class: "jl-radio" }, h("input", { type: "radio", name: "jl-delete-mode", value, checked: i === 0 }), text),
  );
  return openDialog(ctx, {
    title: `Delete label "${name}"`,
    body: radios,
    buttons: [
      { label: "Cancel" },
      {
        label: "Delete",
        kind: "danger",
        action: async () => {
          const checked = /** @type {HTMLInputElement|null} */ (
            radios.map((r) => r.querySelector("input")).find((i) => i?.checked) ?? null
          );
          await ctx.call("delete_label", { name, mode: checked?.value ?? "label" });
        },
      },
    ],
  });
}

/**
 * Delete images (selected or a page), optionally with their source files.
 * @param {DialogHost & {call: import("./api.js").Call}} ctx
 * @param {string[]} ids
 */
export function deleteImagesDialog(ctx, ids) {
  const box = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox" }));
  const warning = h("div", { class: "jl-hint jl-warn", hidden: true },
    "Source files will be deleted from storage. This cannot be undone, and it affects other versions or datasets that use these files (their pages, training or exports will miss them).");
  box.addEventListener("change", () => {
    warning.hidden = !box.checked;
  });
  return openDialog(ctx, {
    title: `Delete ${ids.length} image(s)`,
    body: [
      h("p", { text: `${ids.length} image(s) will be removed from the dataset.` }),
      h("label", { class: "jl-check-row" }, box, "Also delete the source files"),
      warning,
    ],
    buttons: [
      { label: "Cancel" },
      {
        label: "Delete",
        kind: "danger",
        action: async () => {
          await ctx.call("delete_images", { ids, delete_sources: box.checked });
        },
      },
    ],
  });
}

/**
 * The keyboard help popover.
 * @param {DialogHost} host
 */
export function helpDialog(host) {
  const table = h("table", { class: "jl-keys" });
  for (const [keys, what] of SHORTCUTS) {
    table.appendChild(h("tr", {}, h("th", { text: keys }), h("td", { text: what })));
  }
  return openDialog(host, { title: "Keyboard shortcuts", body: table, className: "jl-help" });
}

/**
 * Show a text report (e.g. from sync) in a dialog.
 * @param {DialogHost} host
 * @param {string} title
 * @param {[string, string|number][]} lines
 */
export function reportDialog(host, title, lines) {
  const body = h("table", { class: "jl-keys" });
  replaceChildren(body, lines.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: String(v) }))));
  return openDialog(host, { title, body });
}
