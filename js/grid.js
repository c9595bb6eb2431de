// @ts-check
/** The thumbnail grid: one cell per row of the page; pixels are filled in as they arrive. */
import { showThumbBoxes, sizeThumbBoxes } from "./boxoverlay.js";
import { baseName, h } from "./dom.js";

/**
 * @typedef {{id: string, labels: string[], hard: boolean, missing: boolean, corrupt: boolean,
 *   proposed_labels: string[], proposed_scores: number[], hardness?: number|null, source?: string|null,
 *   boxes?: import("./boxoverlay.js").Box[], proposed_boxes?: import("./boxoverlay.js").Box[],
 *   width?: number|null, height?: number|null}} Row
 * @typedef {{tab: string, selection: Set<string>, focus: number,
 *   pixels: (id: string) => (import("./codec.js").Pixels|undefined),
 *   onCheck: (id: string, ev: MouseEvent) => void, onOpen: (id: string) => void, onFocus: (index: number) => void}} GridView
 */

/**
 * Build the cells of a page.
 * @param {HTMLElement} container
 * @param {Row[]} rows
 * @param {GridView} view
 */
export function renderGrid(container, rows, view) {
  while (container.firstChild) container.removeChild(container.firstChild);
  if (rows.length === 0) {
    container.appendChild(h("div", { class: "jl-empty", text: "No images here. Change the tab or clear the filters." }));
    return;
  }
  rows.forEach((row, index) => container.appendChild(cell(row, index, view)));
  updateSelection(container, view.selection, view.focus);
}

/**
 * @param {Row} row
 * @param {number} index
 * @param {GridView} view
 */
function cell(row, index, view) {
  const check = /** @type {HTMLInputElement} */ (
    h("input", { type: "checkbox", class: "jl-check", attrs: { "aria-label": `select ${row.id}` } })
  );
  check.addEventListener("click", (ev) => {
    ev.stopPropagation();
    view.onFocus(index);
    view.onCheck(row.id, ev);
  });
  const img = /** @type {HTMLImageElement} */ (h("img", { class: "jl-img", alt: baseName(row.id), draggable: false }));
  const pixels = view.pixels(row.id);
  if (pixels) img.src = pixels.url;
  const thumb = h("div", { class: "jl-thumb" }, img);
  if (row.missing) thumb.appendChild(h("div", { class: "jl-thumb-msg", text: "file missing" }));
  const badges = h("div", { class: "jl-badges" },
    row.hard && h("span", { class: "jl-badge jl-badge-hard", text: "hard", title: row.hardness != null ? `hardness ${row.hardness.toFixed(2)}` : "hard example" }),
    row.missing && h("span", { class: "jl-badge jl-badge-bad", text: "missing" }),
    row.corrupt && h("span", { class: "jl-badge jl-badge-bad", text: "corrupt" }),
  );
  const chips = h("div", { class: "jl-chips" });
  if (view.tab === "to_confirm" || (row.labels.length === 0 && row.proposed_labels.length > 0)) {
    row.proposed_labels.forEach((name, i) => {
      const score = row.proposed_scores[i];
      chips.appendChild(
        h("span", { class: "jl-chip jl-chip-proposed", title: "proposed label (not confirmed)" },
          name, score != null && h("span", { class: "jl-score", text: ` ${Math.round(score * 100)}%` })),
      );
    });
  }
  if (view.tab !== "to_confirm" || row.labels.length) {
    for (const name of row.labels) chips.appendChild(h("span", { class: "jl-chip", text: name }));
  }
  const el = h(
    "div",
    {
      class: `jl-cell${row.hard ? " jl-hard" : ""}${row.missing || row.corrupt ? " jl-bad" : ""}`,
      dataset: { id: row.id, index },
      attrs: { role: "gridcell" },
      title: row.id,
    },
    thumb,
    check,
    badges,
    h("div", { class: "jl-name", text: baseName(row.id) }),
    chips,
  );
  showThumbBoxes(el, row, pixels);
  thumb.addEventListener("click", (ev) => {
    view.onFocus(index);
    if (ev.shiftKey || ev.ctrlKey || ev.metaKey) view.onCheck(row.id, ev);
    else view.onOpen(row.id);
  });
  return el;
}

/**
 * Reflect selection and focus without rebuilding the cells.
 * @param {HTMLElement} container
 * @param {Set<string>} selection
 * @param {number} focus
 */
export function updateSelection(container, selection, focus) {
  container.querySelectorAll(".jl-cell").forEach((node, i) => {
    const el = /** @type {HTMLElement} */ (node);
    const on = selection.has(el.dataset.id ?? "");
    el.classList.toggle("jl-selected", on);
    el.classList.toggle("jl-focused", i === focus);
    el.setAttribute("aria-selected", on ? "true" : "false");
    const box = /** @type {HTMLInputElement|null} */ (el.querySelector(".jl-check"));
    if (box) box.checked = on;
  });
}

/**
 * Put arrived pixels into the cells that show them.
 * @param {HTMLElement} container
 * @param {import("./codec.js").Pixels[]} pixels
 */
export function fillImages(container, pixels) {
  const byId = new Map(pixels.map((p) => [p.id, p]));
  container.querySelectorAll(".jl-cell").forEach((node) => {
    const el = /** @type {HTMLElement} */ (node);
    const p = byId.get(el.dataset.id ?? "");
    if (!p) return;
    const img = /** @type {HTMLImageElement|null} */ (el.querySelector(".jl-img"));
    if (img && img.src !== p.url) img.src = p.url;
    sizeThumbBoxes(el, p);
    if (p.corrupt && !el.querySelector(".jl-badge-bad")) {
      el.querySelector(".jl-badges")?.appendChild(h("span", { class: "jl-badge jl-badge-bad", text: "corrupt", title: p.error ?? "" }));
      el.classList.add("jl-bad");
    }
  });
}

/**
 * Cells per row as laid out (cells sharing the first cell's top edge); `fallback` without layout.
 * @param {HTMLElement} container
 * @param {number} fallback
 */
export function columns(container, fallback = 6) {
  const cells = /** @type {HTMLElement[]} */ ([...container.querySelectorAll(".jl-cell")]);
  if (cells.length === 0) return fallback;
  const top = cells[0].offsetTop;
  const n = cells.filter((c) => c.offsetTop === top).length;
  return n === cells.length && top === 0 && cells.every((c) => c.offsetWidth === 0) ? fallback : n;
}
