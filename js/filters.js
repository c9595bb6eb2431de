// @ts-check
/** The filter bar: hard example, labels, creation time, file name/path, labeled by, group, and
 * the random sample of proposals under review or the images to label next (an `ids` filter). */
import { h, replaceChildren } from "./dom.js";

export const EMPTY_FILTERS = { hard: null, labels: null, created: null, name: null, labeled_by: null, group: null, ids: null, boxes: null };

/** How many images "Label next" suggests. */
export const LABEL_NEXT = 20;

/**
 * Is the `ids` filter the "Label next" suggestion (else: the random sample under review)?
 * @param {string[]} ids
 * @param {string[]|null|undefined} suggested
 */
export function isLabelNext(ids, suggested) {
  return Array.isArray(suggested) && suggested.length === ids.length && ids.every((id, i) => id === suggested[i]);
}

/**
 * Is any filter set?
 * @param {{[k: string]: any}} filters
 */
export function isFiltered(filters) {
  return Object.values(filters || {}).some((v) => v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0));
}

/**
 * @param {string} label
 * @param {string} value
 * @param {[string, string][]} options
 * @param {(value: string) => void} onChange
 */
function select(label, value, options, onChange) {
  const el = /** @type {HTMLSelectElement} */ (
    h("select", { class: "jl-select", attrs: { "aria-label": label }, on: { change: () => onChange(el.value) } },
      options.map(([v, text]) => h("option", { value: v, text })))
  );
  el.value = value;
  return el;
}

/**
 * A filter chip with a remove button.
 * @param {string} text
 * @param {string} title of the remove button
 * @param {() => void} onRemove
 * @param {string} [filter] `data-filter` of the chip
 */
function removableChip(text, title, onRemove, filter) {
  return h("span", { class: "jl-chip jl-chip-filter", dataset: filter ? { filter } : {} }, text,
    h("button", { class: "jl-x", type: "button", text: "×", title, on: { click: onRemove } }));
}

/**
 * @param {import("./context.js").Ctx} ctx
 * @returns {import("./context.js").Component}
 */
export function createFilters(ctx) {
  const el = h("div", { class: "jl-filters" });
  /** @param {{[k: string]: any}} patch */
  const setFilter = (patch) => ctx.set({ filters: { ...EMPTY_FILTERS, ...ctx.get("filters"), ...patch } });
  const update = (/** @type {Set<string>} */ changed) => {
    if (!["filters", "labels", "users", "groups", "tab", "label_next"].some((k) => changed.has(k))) return;
    if (el.contains(document.activeElement) && !changed.has("filters")) return; // don't disturb typing
    const f = { ...EMPTY_FILTERS, ...(ctx.get("filters") || {}) };
    const labels = (ctx.get("labels") || []).map((/** @type {any} */ l) => l.name);
    const chosen = Array.isArray(f.labels) ? f.labels : f.labels ? [f.labels] : [];
    const hard = select("example type", f.hard === null ? "" : f.hard ? "1" : "0",
      [["", "Any example"], ["1", "Hard examples"], ["0", "Not hard"]],
      (v) => setFilter({ hard: v === "" ? null : v === "1" }));
    const boxes = select("boxes", f.boxes === null || f.boxes === undefined ? "" : f.boxes ? "1" : "0",
      [["", "Boxes or not"], ["1", "With boxes"], ["0", "Without boxes"]],
      (v) => setFilter({ boxes: v === "" ? null : v === "1" }));
    const addLabel = select("filter by label", "", [["", chosen.length ? "+ label" : "Any label"], ...labels.filter((/** @type {string} */ n) => !chosen.includes(n)).map((/** @type {string} */ n) => /** @type {[string, string]} */ ([n, n]))],
      (v) => v && setFilter({ labels: [...chosen, v] }));
    const chips = chosen.map((/** @type {string} */ name) =>
      removableChip(name, `remove ${name}`, () => setFilter({ labels: chosen.filter((/** @type {string} */ x) => x !== name) })));
    const created = Array.isArray(f.created) ? "custom" : f.created || "";
    const start = /** @type {HTMLInputElement} */ (h("input", { type: "date", class: "jl-input jl-date", attrs: { "aria-label": "created from" },
      value: Array.isArray(f.created) && f.created[0] ? String(f.created[0]).slice(0, 10) : "" }));
    const end = /** @type {HTMLInputElement} */ (h("input", { type: "date", class: "jl-input jl-date", attrs: { "aria-label": "created until" },
      value: Array.isArray(f.created) && f.created[1] ? String(f.created[1]).slice(0, 10) : "" }));
    const applyRange = () => setFilter({ created: [start.value || null, end.value ? `${end.value}T23:59:59.999` : null] });
    start.addEventListener("change", applyRange);
    end.addEventListener("change", applyRange);
    const createdSel = select("creation time", created, [["", "Any time"], ["day", "Within 1 day"], ["month", "Within 1 month"], ["custom", "Custom range"]],
      (v) => setFilter({ created: v === "custom" ? [null, null] : v || null }));
    const name = /** @type {HTMLInputElement} */ (h("input", { type: "search", class: "jl-input", placeholder: "file name or path", value: f.name || "",
      attrs: { "aria-label": "file name or path" } }));
    name.addEventListener("change", () => setFilter({ name: name.value.trim() || null }));
    const users = ctx.get("users") || [];
    const by = select("labeled by", f.labeled_by || "", [["", "Labeled by anyone"], ...users.map((/** @type {string} */ u) => /** @type {[string, string]} */ ([u, u]))],
      (v) => setFilter({ labeled_by: v || null }));
    const groups = ctx.get("groups") || [];
    const group = groups.length
      ? select("group", f.group || "", [["", "Any group"], ...groups.map((/** @type {string} */ g) => /** @type {[string, string]} */ ([g, g]))], (v) => setFilter({ group: v || null }))
      : null;
    const sample = Array.isArray(f.ids) && f.ids.length
      ? removableChip(isLabelNext(f.ids, ctx.get("label_next")) ? `label next: ${f.ids.length}` : `random sample of ${f.ids.length}`,
        "show every image again", () => setFilter({ ids: null }), "ids")
      : null;
    const next = ["unlabeled", "to_confirm"].includes(ctx.get("tab"))
      ? h("button", { class: "jl-btn", type: "button", text: `Label next (${LABEL_NEXT})`, dataset: { action: "label-next" },
        title: "show the images whose labels would help the next auto-label job most; label them, then run it again",
        on: { click: () => ctx.run(() => ctx.call("label_next", { n: LABEL_NEXT })) } })
      : null;
    const clear = h("button", { class: "jl-btn jl-btn-link", type: "button", text: "Clear filters", disabled: !isFiltered(f),
      on: { click: () => ctx.set({ filters: { ...EMPTY_FILTERS } }) } });
    replaceChildren(el, next, sample, hard, boxes, addLabel, chips, createdSel, created === "custom" && [start, "–", end], name, by, group, clear);
  };
  return { el, update };
}
