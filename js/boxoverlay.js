// @ts-check
/** Boxes over a grid thumbnail (confirmed solid, proposed dashed with scores), a box-count
 * badge, and the helpers the box editor shares: SVG nodes, label colours. */
import { h } from "./dom.js";

export const SVG_NS = "http://www.w3.org/2000/svg";
/** Proposed boxes whose score is written on a thumbnail (the rest are drawn without). */
const SCORES_SHOWN = 12;

/**
 * @typedef {{box_id: string, label: string, xmin: number, ymin: number, xmax: number, ymax: number,
 *   score?: number, difficult?: boolean}} Box
 */

/**
 * An SVG element with attributes (strings only become attribute values or text nodes).
 * @param {string} tag
 * @param {{[name: string]: string|number|null|undefined}} [attrs]
 * @param {string} [text]  text content (never markup)
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}, text) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Distinct colours that read on photographs; label i of the label set gets PALETTE[i]. */
const PALETTE = ["#ff453a", "#32d74b", "#0a84ff", "#ffd60a", "#bf5af2", "#ff9f0a", "#64d2ff", "#ff375f", "#30d158", "#ac8e68"];
/** @type {Map<string, number>} */
let order = new Map();

/**
 * Tell the colours the label set's order (the widget's `labels` trait).
 * @param {string[]} names
 */
export function setLabelOrder(names) {
  order = new Map(names.map((n, i) => [n, i]));
}

/**
 * A colour per label name, the same in the grid and the editor: by the label's place in the
 * label set (first ten), else from a hash of the name.
 * @param {string} name
 */
export function labelColor(name) {
  const at = order.get(name);
  if (at !== undefined && at < PALETTE.length) return PALETTE[at];
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  const hue = Math.floor(((hash >>> 0) * 0.618033988749895) % 1 * 360);
  return `hsl(${hue} 90% 55%)`;
}

/**
 * One path ("M x y h w v h h -w z" per box) for many boxes: cheap to draw at any count.
 * @param {Box[]} boxes
 */
export function boxesPath(boxes) {
  return boxes.map((b) => `M${b.xmin} ${b.ymin}H${b.xmax}V${b.ymax}H${b.xmin}Z`).join("");
}

/**
 * The SVG drawn over a thumbnail of an image `width` x `height` (original pixels), or null
 * when it has no boxes or its size is not known yet.
 * @param {{boxes?: Box[], proposed_boxes?: Box[]}} row
 * @param {number|null|undefined} width
 * @param {number|null|undefined} height
 * @returns {SVGElement|null}
 */
export function thumbOverlay(row, width, height) {
  const boxes = row.boxes ?? [];
  const proposed = row.proposed_boxes ?? [];
  if (!(boxes.length || proposed.length) || !width || !height) return null;
  const el = svg("svg", { class: "jl-ovl", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "xMidYMid meet", "aria-hidden": "true" });
  /** @param {Box[]} list @param {string} cls */
  const byLabel = (list, cls) => {
    /** @type {Map<string, Box[]>} */
    const groups = new Map();
    for (const b of list) groups.set(b.label, [...(groups.get(b.label) ?? []), b]);
    for (const [label, group] of groups) el.appendChild(svg("path", { class: cls, d: boxesPath(group), stroke: labelColor(label) }));
  };
  byLabel(boxes, "jl-ovl-box");
  byLabel(proposed, "jl-ovl-box jl-ovl-proposed");
  const font = Math.max(width, height) / 12;
  for (const b of proposed.slice(0, SCORES_SHOWN)) {
    if (b.score === undefined) continue;
    el.appendChild(svg("text", { class: "jl-ovl-score", x: b.xmin, y: b.ymin, dy: font, dx: font / 5, "font-size": font, fill: labelColor(b.label) },
      `${Math.round(b.score * 100)}%`));
  }
  return el;
}

/** @type {WeakMap<Element, any>} cells whose boxes wait for the image's size */
const unsized = new WeakMap();

/**
 * Draw (or redraw) the boxes of `row` over a grid cell's thumbnail, and its box-count badge.
 * Sizes come from the row, else from the thumbnail reply (`pixels`).
 * @param {HTMLElement} cell  a `.jl-cell`
 * @param {{boxes?: Box[], proposed_boxes?: Box[], width?: number|null, height?: number|null}} row
 * @param {import("./codec.js").Pixels} [pixels]
 */
export function showThumbBoxes(cell, row, pixels) {
  const thumb = cell.querySelector(".jl-thumb");
  if (!thumb) return;
  const width = row.width || pixels?.orig_width;
  const height = row.height || pixels?.orig_height;
  thumb.querySelector(".jl-ovl")?.remove();
  const overlay = thumbOverlay(row, width, height);
  thumb.classList.toggle("jl-thumb-boxes", overlay !== null);
  if (overlay) thumb.appendChild(overlay);
  if (!overlay && ((row.boxes ?? []).length || (row.proposed_boxes ?? []).length)) unsized.set(cell, row);
  else unsized.delete(cell);
  const n = (row.boxes ?? []).length;
  const p = (row.proposed_boxes ?? []).length;
  const badges = cell.querySelector(".jl-badges");
  if (!badges || badges.querySelector(".jl-badge-boxes") || !(n || p)) return;
  const text = n && p ? `▭ ${n}+${p}` : `▭ ${n || p}`;
  const title = [n && `${n} box(es)`, p && `${p} proposed box(es)`].filter(Boolean).join(", ");
  badges.appendChild(h("span", { class: `jl-badge jl-badge-boxes${n ? "" : " jl-badge-proposed"}`, text, title }));
}

/**
 * Thumbnail pixels arrived: draw the boxes of a cell that waited for the image's size.
 * @param {HTMLElement} cell
 * @param {import("./codec.js").Pixels} pixels
 */
export function sizeThumbBoxes(cell, pixels) {
  const row = unsized.get(cell);
  if (row) showThumbBoxes(cell, row, pixels);
}
