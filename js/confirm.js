// @ts-check
/** To Be Confirmed actions: estimated precision, confirm all / selected, reject, edit proposal. */
import { labelNameProblem, openDialog } from "./dialogs.js";
import { h } from "./dom.js";
import { createTypeahead } from "./typeahead.js";

/**
 * Text for the estimated precision line.
 * @param {number|null|undefined} value
 */
export function precisionText(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "Estimated precision: not known (no calibrated auto-labeling job yet)";
  return `Estimated precision of the proposals not marked hard: ${(value * 100).toFixed(1)}%`;
}

/**
 * Text about the random sample of proposals under review (empty when there is none).
 * @param {{[k: string]: any}|null|undefined} check
 */
export function sampleText(check) {
  if (!check || !check.size) return "";
  const head = `Random sample: ${check.reviewed} of ${check.size} reviewed, ${check.right} confirmed as proposed`;
  if (check.estimated_precision === null || check.estimated_precision === undefined) return `${head}. Confirm, edit or reject each one.`;
  const est = `estimated precision of the proposals ${(check.estimated_precision * 100).toFixed(1)}%`;
  return check.pending ? `${head}; so far ${est}.` : `${head}: ${est}.`;
}

/**
 * @param {import("./context.js").Ctx} ctx
 * @returns {import("./context.js").Component}
 */
export function confirmSection(ctx) {
  const precision = h("div", { class: "jl-precision" });
  const sample = h("div", { class: "jl-precision jl-sample-check" });
  const checkSample = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn", type: "button", dataset: { action: "check-sample" },
    title: "show 20 proposals drawn at random: review each (confirm, edit or reject) to measure how often the proposals are right",
    on: { click: () => ctx.run(() => ctx.call("sample_proposals", { n: 20 })) } }));
  const selectedIds = () => ctx.get("selection") || [];
  const confirmAll = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-primary", type: "button", dataset: { action: "confirm-all" },
    on: { click: () => {
      const n = (ctx.get("counts") || {}).to_confirm || 0;
      openDialog(ctx, {
        title: `Confirm all ${n} proposal(s)?`,
        body: h("p", { text: `${n} image(s) get their proposed labels as labels (origin: auto). ${precisionText(ctx.get("estimated_precision"))}. ${sampleText(ctx.get("sample_check"))}` }),
        buttons: [{ label: "Cancel" }, { label: "Confirm all", kind: "primary", action: () => ctx.call("confirm", { ids: null }, { timeout: 120000 }).then(() => true) }],
      });
    } } }));
  const confirmSel = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn", type: "button", dataset: { action: "confirm-selected" },
    on: { click: () => ctx.run(() => ctx.call("confirm", { ids: selectedIds() })) } }));
  const rejectSel = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-danger", type: "button", dataset: { action: "reject-selected" },
    on: { click: () => ctx.run(() => ctx.call("reject", { ids: selectedIds() })) } }));
  const edit = createTypeahead({
    placeholder: "new proposed label",
    button: "Set",
    onSubmit: async (name) => {
      const problem = labelNameProblem(name);
      if (problem) throw new Error(problem);
      const ids = ctx.selectionOrFocus();
      if (!ids.length) throw new Error("select the proposals to edit first");
      await ctx.call("set_proposal", { ids, names: [name] });
    },
  });
  const el = h("section", { class: "jl-section jl-confirm" },
    h("div", { class: "jl-panel-title", text: "To Be Confirmed" }),
    precision,
    sample,
    h("div", { class: "jl-row" }, confirmAll, checkSample),
    h("div", { class: "jl-row" }, confirmSel, rejectSel),
    h("div", { class: "jl-subtitle", text: "Edit the selected proposals, then confirm" }),
    edit.el,
  );
  const update = (/** @type {Set<string>} */ changed) => {
    el.hidden = ctx.get("tab") !== "to_confirm";
    if (changed.has("labels")) edit.setNames((ctx.get("labels") || []).map((/** @type {any} */ l) => l.name));
    const n = (ctx.get("counts") || {}).to_confirm || 0;
    const s = selectedIds().length;
    precision.textContent = precisionText(ctx.get("estimated_precision"));
    sample.textContent = sampleText(ctx.get("sample_check"));
    sample.hidden = !sample.textContent;
    checkSample.textContent = ctx.get("sample_check")?.size ? "New random sample" : "Check a random sample";
    confirmAll.textContent = `Confirm all (${n})`;
    confirmAll.disabled = n === 0;
    confirmSel.textContent = `Confirm selected (${s})`;
    rejectSel.textContent = `Reject selected (${s})`;
    confirmSel.disabled = rejectSel.disabled = s === 0;
  };
  return { el, update };
}
