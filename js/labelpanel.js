// @ts-check
/** The side panel: label the selection, the selection's labels, all labels with counts. */
import { confirmSection } from "./confirm.js";
import { deleteLabelDialog, labelNameProblem, renameDialog } from "./dialogs.js";
import { h, replaceChildren } from "./dom.js";
import { createTypeahead } from "./typeahead.js";

/**
 * Count labels over the given rows: [[name, count]], most frequent first.
 * @param {{labels: string[]}[]} rows
 * @returns {[string, number][]}
 */
export function labelsOf(rows) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const row of rows) for (const name of row.labels) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/**
 * @param {import("./context.js").Ctx & {rowOf: (id: string) => any}} ctx
 * @returns {import("./context.js").Component}
 */
export function createLabelPanel(ctx) {
  const typeahead = createTypeahead({
    placeholder: "label name",
    button: "Apply",
    onSubmit: async (name) => {
      const problem = labelNameProblem(name);
      if (problem) throw new Error(problem);
      const ids = ctx.selectionOrFocus();
      if (ids.length === 0) {
        await ctx.call("add_label", { name });
        ctx.notify(`added label ${name}`);
      } else {
        await ctx.call("label", { ids, names: [name] });
      }
    },
  });
  const title = h("div", { class: "jl-panel-title" });
  const selected = h("div", { class: "jl-sel-labels" });
  const labelSection = h("section", { class: "jl-section" }, title, typeahead.el, selected);
  const confirm = confirmSection(ctx);
  const all = h("div", { class: "jl-all-labels" });
  const allSection = h("section", { class: "jl-section" }, h("div", { class: "jl-panel-title", text: "All labels" }), all);
  const el = h("aside", { class: "jl-panel" }, confirm.el, labelSection, allSection);

  const renderSelected = () => {
    const ids = ctx.get("selection") || [];
    const known = ids.map((/** @type {string} */ id) => ctx.rowOf(id)).filter(Boolean);
    title.textContent = ids.length ? `Label ${ids.length} selected image(s)` : "Label (select images first, or add a label)";
    typeahead.button.textContent = ids.length ? "Apply" : "Add";
    if (!ids.length) return replaceChildren(selected);
    const rows = labelsOf(known);
    replaceChildren(
      selected,
      h("div", { class: "jl-subtitle", text: "Labels of selected images" }),
      rows.length === 0 && h("div", { class: "jl-muted", text: "none yet" }),
      rows.map(([name, count]) => selectedRow(ctx, name, count, ids)),
    );
  };
  const renderAll = () => {
    const labels = ctx.get("labels") || [];
    replaceChildren(
      all,
      labels.length === 0 && h("div", { class: "jl-muted", text: "No labels yet." }),
      labels.map((/** @type {{name: string, count: number}} */ l, i) =>
        h("div", { class: "jl-label-row", dataset: { label: l.name } },
          h("span", { class: "jl-key", text: i < 9 ? String(i + 1) : "" , title: i < 9 ? `press ${i + 1} to apply` : "" }),
          h("button", { class: "jl-label-name", type: "button", text: l.name, title: `apply ${l.name} to the selection`,
            on: { click: () => ctx.run(() => applyTo(ctx, l.name)) } }),
          h("span", { class: "jl-count", text: String(l.count) }),
          h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "✎", title: `rename ${l.name}`, attrs: { "aria-label": `rename ${l.name}` },
            on: { click: () => renameDialog(ctx, l.name, labels) } }),
          h("button", { class: "jl-btn jl-btn-icon jl-btn-del", type: "button", text: "✕", title: `delete the label ${l.name}…`, attrs: { "aria-label": `delete ${l.name}` },
            on: { click: () => ctx.run(() => deleteLabelDialog(ctx, l.name)) } }),
        ),
      ),
    );
  };
  const update = (/** @type {Set<string>} */ changed) => {
    confirm.update(changed);
    const onConfirm = ctx.get("tab") === "to_confirm";
    labelSection.hidden = onConfirm;
    if (changed.has("labels")) {
      typeahead.setNames((ctx.get("labels") || []).map((/** @type {any} */ l) => l.name));
      renderAll();
    }
    if (["selection", "rows", "labels"].some((k) => changed.has(k))) renderSelected();
  };
  return { el, update };
}

/**
 * Apply a label to the selection (or the focused image).
 * @param {import("./context.js").Ctx} ctx
 * @param {string} name
 */
export async function applyTo(ctx, name) {
  const ids = ctx.selectionOrFocus();
  if (!ids.length) throw new Error("select images first (click their checkboxes)");
  if (ctx.get("tab") === "to_confirm") await ctx.call("set_proposal", { ids, names: [name] });
  else await ctx.call("label", { ids, names: [name] });
}

/**
 * One label of the selection, with edit (replace on the selection) and remove.
 * @param {import("./context.js").Ctx} ctx
 * @param {string} name
 * @param {number} count
 * @param {string[]} ids
 */
function selectedRow(ctx, name, count, ids) {
  const row = h("div", { class: "jl-label-row", dataset: { label: name } });
  const show = () =>
    replaceChildren(
      row,
      h("span", { class: "jl-label-name jl-static", text: name }),
      h("span", { class: "jl-count", text: `${count}/${ids.length}` }),
      h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "✎", title: `change ${name} on the selected images`,
        on: { click: edit } }),
      h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "✕", title: `remove ${name} from the selected images`,
        on: { click: () => ctx.run(() => ctx.call("unlabel", { ids, names: [name] })) } }),
    );
  const edit = () => {
    const input = /** @type {HTMLInputElement} */ (h("input", { class: "jl-input", type: "text", value: name, attrs: { "aria-label": `new label for ${name}` } }));
    const error = h("div", { class: "jl-inline-error" });
    const ok = async () => {
      const next = input.value.trim();
      const problem = labelNameProblem(next);
      if (problem) return void (error.textContent = problem);
      await ctx.run(() => ctx.call("replace_label", { ids, old: name, new: next }));
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") ok();
      if (ev.key === "Escape") { ev.stopPropagation(); show(); }
    });
    replaceChildren(row, input,
      h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "✓", title: "save", on: { click: ok } }),
      h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "↺", title: "cancel", on: { click: show } }),
      error);
    input.focus();
    input.select();
  };
  show();
  return row;
}
