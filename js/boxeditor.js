// @ts-check
/**
 * The box editor: the preview's image with its object-detection boxes, drawn in SVG over a
 * display-size copy. The SVG's user space is the ORIGINAL image's pixels (viewBox), so every
 * coordinate the editor reads or sends is an original pixel: no scaling to undo.
 *
 * Mouse: drag on the image draws a box with the current label; click selects; drag inside
 * moves; the handles resize; the wheel zooms around the cursor; Space+drag or the middle
 * button pans. Keys (only while the editor is shown; they never leave the widget): see
 * `EDITOR_KEYS`. Every edit is one dataset call; a box is drawn dashed-faint ("pending") until
 * the kernel's reply says it is durable, then as the reply says.
 */
import { labelColor, setLabelOrder, svg } from "./boxoverlay.js";
import { h, replaceChildren } from "./dom.js";
import { isTyping } from "./keyboard.js";

/** @typedef {import("./boxoverlay.js").Box} Box */
/** @typedef {{x: number, y: number, k: number}} View  image point at the stage's top-left; screen px per image px */
/** @typedef {{xmin: number, ymin: number, xmax: number, ymax: number}} Rect */

export const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
/** Screen pixels a press must travel before it is a drag (else a click). */
const MIN_DRAG = 3;
/** Most screen pixels per image pixel. */
const MAX_ZOOM = 40;
/** Arrow-key nudges in a burst are one edit, sent after this pause (ms). */
const NUDGE_COMMIT_MS = 400;
/** Longest side of the display copy requested (device pixels). */
const MAX_DISPLAY = 2560;

/** The editor's keys, as the help lists them. */
export const EDITOR_KEYS = [
  ["drag", "draw a box with the current label"],
  ["click / drag inside / handles", "select / move / resize a box"],
  ["1 – 9", "label of the selected box (or of the next box)"],
  ["N", "draw another box with the last label"],
  ["Tab / Shift+Tab", "next / previous box"],
  ["arrows (Shift)", "nudge the selected box 1 px (10 px)"],
  ["Delete / Backspace", "delete (or drop) the selected box"],
  ["A / C", "accept the selected proposed box / confirm the image"],
  ["wheel · Space+drag", "zoom around the cursor · pan"],
  ["F", "fit the image to the view"],
  ["← → or [ ]", "previous / next image"],
  ["Ctrl+Z", "undo"],
];

// -- geometry (pure: unit tested) -------------------------------------------------------------

/**
 * A rectangle rounded to whole pixels and kept inside `width` x `height`, at least 1 px.
 * @param {Rect} r
 * @param {number} width
 * @param {number} height
 * @returns {Rect}
 */
export function clampRect(r, width, height) {
  const clamp = (/** @type {number} */ v, /** @type {number} */ hi) => Math.min(hi, Math.max(0, Math.round(v)));
  let xmin = clamp(Math.min(r.xmin, r.xmax), width);
  let xmax = clamp(Math.max(r.xmin, r.xmax), width);
  let ymin = clamp(Math.min(r.ymin, r.ymax), height);
  let ymax = clamp(Math.max(r.ymin, r.ymax), height);
  if (xmax <= xmin) xmax < width ? (xmax = xmin + 1) : (xmin = xmax - 1);
  if (ymax <= ymin) ymax < height ? (ymax = ymin + 1) : (ymin = ymax - 1);
  return { xmin, ymin, xmax, ymax };
}

/**
 * The box moved by (dx, dy) image pixels, its size kept, stopped at the image's edges.
 * @param {Rect} r
 * @param {number} dx
 * @param {number} dy
 * @param {number} width
 * @param {number} height
 * @returns {Rect}
 */
export function moveRect(r, dx, dy, width, height) {
  const w = r.xmax - r.xmin;
  const hgt = r.ymax - r.ymin;
  const x = Math.min(width - w, Math.max(0, Math.round(r.xmin + dx)));
  const y = Math.min(height - hgt, Math.max(0, Math.round(r.ymin + dy)));
  return { xmin: Math.max(0, x), ymin: Math.max(0, y), xmax: Math.max(0, x) + w, ymax: Math.max(0, y) + hgt };
}

/**
 * The box with the edges of `handle` ("nw", "e", ...) dragged to image point `p`.
 * @param {Rect} r
 * @param {string} handle
 * @param {{x: number, y: number}} p
 * @param {number} width
 * @param {number} height
 * @returns {Rect}
 */
export function resizeRect(r, handle, p, width, height) {
  const out = { ...r };
  if (handle.includes("w")) out.xmin = p.x;
  if (handle.includes("e")) out.xmax = p.x;
  if (handle.includes("n")) out.ymin = p.y;
  if (handle.includes("s")) out.ymax = p.y;
  return clampRect(out, width, height);
}

/**
 * The view that shows the whole image centred in a `cw` x `ch` stage.
 * @param {number} width
 * @param {number} height
 * @param {number} cw
 * @param {number} ch
 * @returns {View}
 */
export function fitView(width, height, cw, ch) {
  const k = Math.min(cw / width, ch / height) || 1;
  return { x: (width - cw / k) / 2, y: (height - ch / k) / 2, k };
}

/**
 * Zoom by `factor` keeping the image point under stage point (cx, cy) where it is.
 * @param {View} view
 * @param {number} factor
 * @param {number} cx
 * @param {number} cy
 * @param {number} minK
 * @returns {View}
 */
export function zoomAt(view, factor, cx, cy, minK) {
  const k = Math.min(MAX_ZOOM, Math.max(minK, view.k * factor));
  const px = view.x + cx / view.k;
  const py = view.y + cy / view.k;
  return { x: px - cx / k, y: py - cy / k, k };
}

/** @param {Rect} a @param {Rect} b */
const sameRect = (a, b) => a.xmin === b.xmin && a.ymin === b.ymin && a.xmax === b.xmax && a.ymax === b.ymax;
/** @param {Box} b */
const rectOf = (b) => ({ xmin: b.xmin, ymin: b.ymin, xmax: b.xmax, ymax: b.ymax });
/** @param {Box} b */
const area = (b) => (b.xmax - b.xmin) * (b.ymax - b.ymin);

// -- the editor -------------------------------------------------------------------------------

/**
 * @typedef {{nav: (delta: number) => void, order: () => string[], open: (id: string) => void,
 *   close: () => void}} EditorHooks  what the preview lends the editor
 */

/**
 * @param {import("./context.js").Ctx} ctx
 * @param {EditorHooks} hooks
 */
export function createBoxEditor(ctx, hooks) {
  /** @type {string|null} */
  let id = null;
  let width = 0;
  let height = 0;
  /** @type {any} */
  let row = null;
  /** @type {Box[]} */
  let boxes = [];
  /** @type {Box[]} */
  let proposed = [];
  /** @type {Set<string>} box ids shown before the kernel acknowledged them */
  const pending = new Set();
  /** @type {string|null} */
  let selected = null;
  /** @type {string|null} */
  let nextLabel = null;
  /** @type {string|null} */
  let lastLabel = null;
  /** @type {"boxes"|"image"} */
  let mode = "image";
  let armed = false;
  let spaceHeld = false;
  let fitted = true;
  /** @type {View} */
  let view = { x: 0, y: 0, k: 1 };
  /** @type {any} */
  let gesture = null;
  let inFlight = 0;
  /** @type {Promise<any>} */
  let queue = Promise.resolve();
  /** @type {{dx: number, dy: number, timer: any, box: string}|null} */
  let nudge = null;
  let startedAt = 0;
  let tempIds = 0;
  /** @type {{prev: string|null, next: string|null}} the image's neighbours when it was shown */
  let around = { prev: null, next: null };

  // DOM ---------------------------------------------------------------------------------------
  // The pixels are an <img> under the SVG, placed by the same view (exact to the sub-pixel).
  const image = /** @type {HTMLImageElement} */ (h("img", { class: "jl-preview-img jl-be-img", draggable: false, alt: "" }));
  const boxLayer = svg("g", { class: "jl-be-boxes" });
  const draft = svg("rect", { class: "jl-be-draft", visibility: "hidden" });
  const handleLayer = svg("g", { class: "jl-be-handles" });
  const crossH = svg("line", { class: "jl-be-cross" });
  const crossV = svg("line", { class: "jl-be-cross" });
  const cross = svg("g", { visibility: "hidden" });
  cross.append(crossH, crossV);
  const root = /** @type {SVGSVGElement} */ (svg("svg", { class: "jl-be-svg", preserveAspectRatio: "none", role: "img" }));
  root.append(boxLayer, draft, handleLayer, cross);
  const handles = HANDLES.map((name) => svg("rect", { class: `jl-be-handle jl-be-h-${name}`, "data-handle": name }));
  handleLayer.append(...handles);
  const stage = h("div", { class: "jl-be-stage" });
  stage.append(image, root);
  const modeBtn = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-be-mode", type: "button",
    title: "B: what the digit keys do here (label the image, or label boxes)", on: { click: () => setMode(mode === "boxes" ? "image" : "boxes") } }));
  const labelSel = /** @type {HTMLSelectElement} */ (h("select", { class: "jl-select jl-be-label", attrs: { "aria-label": "label for the next box" },
    on: { change: () => { chooseLabel(labelSel.value); ctx.root.focus(); } } }));
  const counts = h("span", { class: "jl-muted jl-be-counts" });
  const selInfo = h("span", { class: "jl-be-selinfo" });
  const acceptBtn = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn", type: "button", text: "Accept box (A)", dataset: { action: "accept-box" },
    on: { click: () => acceptSelected() } }));
  const deleteBtn = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-danger", type: "button", text: "Delete box (Del)", dataset: { action: "delete-box" },
    on: { click: () => deleteSelected() } }));
  const fitBtn = h("button", { class: "jl-btn", type: "button", text: "Fit (F)", dataset: { action: "fit" }, title: "fit the image to the view", on: { click: () => fit() } });
  const zoomText = h("span", { class: "jl-muted jl-be-zoom" });
  const confirmBtn = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-primary", type: "button", text: "Confirm image (C)", dataset: { action: "confirm-image" },
    title: "the image's proposed boxes (and proposed labels) become labels; then the next image", on: { click: () => confirmImage() } }));
  const rejectBtn = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-danger", type: "button", text: "Reject image", dataset: { action: "reject-image" },
    title: "drop the image's remaining proposals; then the next image", on: { click: () => rejectImage() } }));
  const bar = h("div", { class: "jl-be-bar" }, modeBtn, labelSel, counts, selInfo, acceptBtn, deleteBtn, h("span", { class: "jl-be-spacer" }), confirmBtn, rejectBtn, zoomText, fitBtn);
  const hint = h("div", { class: "jl-muted jl-be-hint",
    text: "drag: draw · click: select · 1–9: label · N: another box · Tab: next box · arrows: nudge · wheel: zoom · Space+drag: pan · F: fit · Del: delete · Ctrl+Z: undo" });
  const el = h("div", { class: "jl-be", dataset: { pending: 0 } }, bar, stage, hint);

  // state -> screen -----------------------------------------------------------------------------
  const stageSize = () => ({ cw: stage.clientWidth || 800, ch: stage.clientHeight || 600 });
  const minK = () => { const { cw, ch } = stageSize(); return Math.min(cw / width, ch / height) / 2 || 0.01; };
  const applyView = () => {
    const { cw, ch } = stageSize();
    root.setAttribute("viewBox", `${view.x} ${view.y} ${cw / view.k} ${ch / view.k}`);
    Object.assign(image.style, { left: `${-view.x * view.k}px`, top: `${-view.y * view.k}px`, width: `${width * view.k}px`, height: `${height * view.k}px` });
    root.style.setProperty("--jl-be-font", `${13 / view.k}px`);
    boxLayer.setAttribute("font-size", String(13 / view.k));
    zoomText.textContent = `${Math.round(view.k * 100)}%`;
    el.dataset.k = String(view.k);
    zoomText.title = `${view.k.toFixed(3)} screen px per image px`;
    renderHandles();
  };
  const fit = () => {
    const { cw, ch } = stageSize();
    view = fitView(width, height, cw, ch);
    fitted = true;
    applyView();
  };
  /** @param {string} boxId */
  const find = (boxId) => boxes.find((b) => b.box_id === boxId) ?? proposed.find((b) => b.box_id === boxId);
  /** @param {string} boxId */
  const isProposed = (boxId) => proposed.some((b) => b.box_id === boxId);
  /** @type {Map<string, {g: SVGElement, rect: SVGElement, text: SVGElement}>} */
  let nodes = new Map();
  /** @param {Box} b @param {{g: SVGElement, rect: SVGElement, text: SVGElement}} n */
  const place = (b, n) => {
    n.rect.setAttribute("x", String(b.xmin));
    n.rect.setAttribute("y", String(b.ymin));
    n.rect.setAttribute("width", String(b.xmax - b.xmin));
    n.rect.setAttribute("height", String(b.ymax - b.ymin));
    n.text.setAttribute("x", String(b.xmin));
    n.text.setAttribute("y", String(b.ymin));
    const label = b.score !== undefined && isProposed(b.box_id) ? `${b.label} ${Math.round(b.score * 100)}%` : b.label;
    if (n.text.textContent !== label) n.text.textContent = label;
    const color = labelColor(b.label);
    n.g.setAttribute("stroke", color);
    n.text.setAttribute("fill", color);
  };
  const renderBoxes = () => {
    nodes = new Map();
    const all = [...boxes.map((b) => ({ b, kind: "box" })), ...proposed.map((b) => ({ b, kind: "proposed" }))];
    all.sort((p, q) => area(q.b) - area(p.b)); // small boxes on top: a click inside one picks it
    const frag = document.createDocumentFragment();
    for (const { b, kind } of all) {
      const cls = `jl-be-box jl-be-${kind}${b.box_id === selected ? " jl-be-selected" : ""}${pending.has(b.box_id) ? " jl-be-pending" : ""}`;
      const g = svg("g", { class: cls, "data-box-id": b.box_id, "data-label": b.label });
      const rect = svg("rect", { class: "jl-be-rect" });
      const text = svg("text", { class: "jl-be-text", dx: "0.25em", dy: "1.05em" });
      g.append(rect, text);
      place(b, { g, rect, text });
      nodes.set(b.box_id, { g, rect, text });
      frag.appendChild(g);
    }
    replaceChildren(boxLayer, frag);
    renderHandles();
    renderBar();
  };
  /** @param {Rect} [r] where the selected box is drawn now (during a drag) */
  const renderHandles = (r) => {
    const box = selected ? r ?? find(selected) : null;
    handleLayer.setAttribute("visibility", box ? "visible" : "hidden");
    if (!box) return;
    const s = 9 / view.k;
    const xs = { w: box.xmin, e: box.xmax, c: (box.xmin + box.xmax) / 2 };
    const ys = { n: box.ymin, s: box.ymax, c: (box.ymin + box.ymax) / 2 };
    HANDLES.forEach((name, i) => {
      const x = name.includes("w") ? xs.w : name.includes("e") ? xs.e : xs.c;
      const y = name.includes("n") ? ys.n : name.includes("s") ? ys.s : ys.c;
      handles[i].setAttribute("x", String(x - s / 2));
      handles[i].setAttribute("y", String(y - s / 2));
      handles[i].setAttribute("width", String(s));
      handles[i].setAttribute("height", String(s));
    });
  };
  const renderBar = () => {
    const labels = (ctx.get("labels") || []).map((/** @type {any} */ l) => l.name);
    setLabelOrder(labels);
    const current = labelFor();
    if (labelSel.dataset.names !== labels.join("\n") || labelSel.value !== (current ?? "")) {
      replaceChildren(labelSel,
        labels.length === 0 && h("option", { value: "", text: "no labels yet: add one in the panel" }),
        labels.map((/** @type {string} */ n, /** @type {number} */ i) => h("option", { value: n, text: `${i < 9 ? `${i + 1}: ` : ""}${n}` })));
      labelSel.dataset.names = labels.join("\n");
      labelSel.value = current ?? "";
    }
    modeBtn.textContent = mode === "boxes" ? "1–9: box labels" : "1–9: image labels";
    modeBtn.classList.toggle("jl-btn-on", mode === "boxes");
    counts.textContent = `${boxes.length} box(es)${proposed.length ? ` · ${proposed.length} proposed` : ""}`;
    const box = selected ? find(selected) : null;
    const px = (/** @type {number} */ v) => String(Math.round(v * 10) / 10);
    selInfo.textContent = box ? `${box.label}${isProposed(box.box_id) ? " (proposed)" : ""} ${px(box.xmax - box.xmin)}×${px(box.ymax - box.ymin)} at ${px(box.xmin)},${px(box.ymin)}` : "";
    acceptBtn.hidden = !(box && isProposed(box.box_id));
    deleteBtn.hidden = !box;
    const proposals = proposed.length > 0 || (row?.proposed_labels ?? []).length > 0;
    confirmBtn.hidden = rejectBtn.hidden = !proposals;
    stage.classList.toggle("jl-be-drawing", armed || gesture?.kind === "draw");
    el.dataset.selected = selected ?? "";
    el.dataset.mode = mode;
  };
  const setBusy = (/** @type {number} */ d) => {
    inFlight += d;
    el.dataset.pending = String(inFlight + (nudge ? 1 : 0));
  };

  // kernel calls ---------------------------------------------------------------------------------
  /**
   * Queue one dataset call; its reply (the image's boxes after it) replaces what is shown.
   * @param {string} op
   * @param {object} msg
   * @returns {Promise<any>}
   */
  const send = (op, msg) => {
    const mine = id;
    setBusy(1);
    const run = queue.then(async () => {
      try {
        const { reply } = await ctx.call(op, { id: mine, ...msg });
        if (reply && mine === id) apply(reply);
        return reply;
      } catch (err) {
        ctx.notify(String(/** @type {any} */ (err)?.message ?? err), "error");
        if (mine === id) await reload();
        return null;
      } finally {
        setBusy(-1);
      }
    });
    queue = run.catch(() => null);
    return run;
  };
  const reload = async () => {
    const mine = id;
    try {
      const { reply } = await ctx.call("boxes", { id: mine });
      if (mine === id) apply(reply);
    } catch (err) {
      ctx.notify(String(/** @type {any} */ (err)?.message ?? err), "error");
    }
  };
  /** @param {any} reply */
  const apply = (reply) => {
    boxes = reply.boxes ?? [];
    proposed = reply.proposed_boxes ?? [];
    pending.clear();
    if (selected?.startsWith("pending-") && reply.box_id) selected = reply.box_id; // the box just drawn
    if (selected && !find(selected)) selected = null;
    if (gesture) gesture.stale = true; // redrawn when the drag ends
    else renderBoxes();
  };

  /** The label a new box gets. */
  const labelFor = () => {
    const names = (ctx.get("labels") || []).map((/** @type {any} */ l) => l.name);
    const pick = nextLabel ?? lastLabel;
    return pick && names.includes(pick) ? pick : (names[0] ?? null);
  };
  /** @param {string} name */
  const chooseLabel = (name) => {
    if (!name) return;
    setMode("boxes");
    if (selected) relabel(selected, name);
    else nextLabel = name;
    renderBar();
  };
  /** @param {"boxes"|"image"} m */
  const setMode = (m) => {
    mode = m;
    renderBar();
  };

  /** @param {Rect} r */
  const addBox = (r) => {
    const label = labelFor();
    if (!label) {
      ctx.notify("add a label first (in the panel on the right), then draw its boxes", "error");
      return;
    }
    const temp = `pending-${++tempIds}`;
    boxes = [...boxes, { box_id: temp, label, ...r }];
    pending.add(temp);
    lastLabel = label;
    nextLabel = null;
    selected = temp;
    setMode("boxes");
    renderBoxes();
    send("add_box", { box: { label, ...r } });
  };
  /** @param {string} boxId @param {{[k: string]: any}} changes */
  const update = (boxId, changes) => {
    if (boxId.startsWith("pending-")) return; // not in the dataset yet: its reply redraws it
    const change = (/** @type {Box} */ b) => (b.box_id === boxId ? { ...b, ...changes } : b);
    boxes = boxes.map(change);
    proposed = proposed.map(change);
    pending.add(boxId);
    renderBoxes();
    return send("update_box", { box_id: boxId, changes });
  };
  /** @param {string} boxId @param {string} label */
  const relabel = (boxId, label) => {
    lastLabel = label;
    if (find(boxId)?.label !== label) update(boxId, { label });
  };
  const deleteSelected = () => {
    if (!selected || selected.startsWith("pending-")) return;
    const gone = selected;
    const i = [...boxes, ...proposed].findIndex((b) => b.box_id === gone);
    boxes = boxes.filter((b) => b.box_id !== gone);
    proposed = proposed.filter((b) => b.box_id !== gone);
    const rest = [...boxes, ...proposed];
    selected = rest.length ? rest[Math.min(i, rest.length - 1)].box_id : null;
    renderBoxes();
    send("delete_boxes", { box_ids: [gone] });
  };
  const acceptSelected = () => {
    if (!selected || !isProposed(selected)) return;
    send("accept_boxes", { box_ids: [selected] });
  };
  const afterImage = async (/** @type {string} */ op) => {
    flushNudge();
    const order = hooks.order();
    const i = order.indexOf(id ?? "");
    const next = i >= 0 ? (order[i + 1] ?? order[i - 1] ?? null) : around.next ?? around.prev;
    const done = id;
    await queue;
    try {
      await ctx.call(op, { ids: [done] });
    } catch (err) {
      return ctx.notify(String(/** @type {any} */ (err)?.message ?? err), "error");
    }
    if (done !== id) return;
    if (next && next !== done) hooks.open(next);
    else hooks.close();
  };
  /** Previous/next image, also once this one left the tab (its proposals are all resolved). */
  const go = (/** @type {number} */ d) => {
    flushNudge();
    const order = hooks.order();
    if (id && order.includes(id)) return hooks.nav(d);
    const next = d < 0 ? around.prev : around.next;
    if (next && order.includes(next)) hooks.open(next);
  };
  const confirmImage = () => afterImage("confirm");
  const rejectImage = () => afterImage("reject");
  const undo = () => {
    flushNudge();
    selected = null;
    send("box_undo", {});
  };
  /** @param {number} d */
  const cycle = (d) => {
    const all = [...boxes, ...proposed];
    if (!all.length) return;
    const i = all.findIndex((b) => b.box_id === selected);
    selected = all[(i < 0 ? (d > 0 ? 0 : all.length - 1) : (i + d + all.length) % all.length)].box_id;
    renderBoxes();
  };
  /** @param {number} dx @param {number} dy */
  const nudgeBy = (dx, dy) => {
    if (!selected || selected.startsWith("pending-")) return;
    const box = find(selected);
    if (!box) return;
    if (nudge && nudge.box !== selected) flushNudge();
    const moved = moveRect(box, dx, dy, width, height);
    const change = (/** @type {Box} */ b) => (b.box_id === box.box_id ? { ...b, ...moved } : b);
    boxes = boxes.map(change);
    proposed = proposed.map(change);
    pending.add(box.box_id);
    if (nudge) clearTimeout(nudge.timer);
    nudge = { dx: 0, dy: 0, box: box.box_id, timer: setTimeout(flushNudge, NUDGE_COMMIT_MS) };
    setBusy(0);
    renderBoxes();
  };
  const flushNudge = () => {
    if (!nudge) return;
    const boxId = nudge.box;
    clearTimeout(nudge.timer);
    nudge = null;
    const box = find(boxId);
    if (box) send("update_box", { box_id: boxId, changes: rectOf(box) });
  };

  // pointer ------------------------------------------------------------------------------------
  /** @param {{clientX: number, clientY: number}} ev */
  const stagePoint = (ev) => {
    const r = stage.getBoundingClientRect();
    return { cx: ev.clientX - r.left, cy: ev.clientY - r.top };
  };
  /** @param {{clientX: number, clientY: number}} ev */
  const imagePoint = (ev) => {
    const { cx, cy } = stagePoint(ev);
    return { x: view.x + cx / view.k, y: view.y + cy / view.k };
  };
  /** @param {{x: number, y: number}} p */
  const showCross = (p) => {
    crossH.setAttribute("x1", "0");
    crossH.setAttribute("x2", String(width));
    crossH.setAttribute("y1", String(p.y));
    crossH.setAttribute("y2", String(p.y));
    crossV.setAttribute("y1", "0");
    crossV.setAttribute("y2", String(height));
    crossV.setAttribute("x1", String(p.x));
    crossV.setAttribute("x2", String(p.x));
    cross.setAttribute("visibility", "visible");
  };
  root.addEventListener("pointerdown", (ev) => {
    if (!id) return;
    ctx.root.focus({ preventScroll: true });
    const { cx, cy } = stagePoint(ev);
    const target = /** @type {Element} */ (ev.target);
    if (ev.button === 1 || (ev.button === 0 && spaceHeld)) {
      gesture = { kind: "pan", cx, cy, view: { ...view } };
      ev.preventDefault();
    } else if (ev.button === 0) {
      const p = imagePoint(ev);
      const handle = target.closest?.("[data-handle]")?.getAttribute("data-handle");
      const boxId = target.closest?.("[data-box-id]")?.getAttribute("data-box-id");
      if (armed || (!handle && !boxId)) {
        gesture = { kind: "draw", cx, cy, p0: p };
        showCross(p);
      } else if (handle && selected && find(selected)) {
        gesture = { kind: "resize", cx, cy, handle, box: selected, orig: rectOf(/** @type {Box} */ (find(selected))) };
      } else if (boxId) {
        if (selected !== boxId) {
          flushNudge();
          selected = boxId;
          renderBoxes();
        }
        const box = find(boxId);
        gesture = box && { kind: "move", cx, cy, p0: p, box: boxId, orig: rectOf(box) };
      }
      ev.preventDefault();
    }
    if (gesture) {
      root.setPointerCapture?.(ev.pointerId);
      renderBar();
    }
  });
  root.addEventListener("pointermove", (ev) => {
    const p = imagePoint(ev);
    if (!gesture) {
      const overBox = /** @type {Element} */ (ev.target).closest?.("[data-box-id],[data-handle]");
      if (armed || (mode === "boxes" && !overBox && !spaceHeld)) showCross(p);
      else cross.setAttribute("visibility", "hidden");
      return;
    }
    const { cx, cy } = stagePoint(ev);
    if (!gesture.moved && Math.hypot(cx - gesture.cx, cy - gesture.cy) < MIN_DRAG) return;
    gesture.moved = true;
    if (gesture.kind === "pan") {
      view = { ...gesture.view, x: gesture.view.x - (cx - gesture.cx) / view.k, y: gesture.view.y - (cy - gesture.cy) / view.k };
      fitted = false;
      applyView();
    } else if (gesture.kind === "draw") {
      showCross(p);
      const r = clampRect({ xmin: gesture.p0.x, ymin: gesture.p0.y, xmax: p.x, ymax: p.y }, width, height);
      gesture.rect = r;
      draft.setAttribute("x", String(r.xmin));
      draft.setAttribute("y", String(r.ymin));
      draft.setAttribute("width", String(r.xmax - r.xmin));
      draft.setAttribute("height", String(r.ymax - r.ymin));
      draft.setAttribute("stroke", labelFor() ? labelColor(/** @type {string} */ (labelFor())) : "#fff");
      draft.setAttribute("visibility", "visible");
    } else {
      const r = gesture.kind === "move"
        ? moveRect(gesture.orig, p.x - gesture.p0.x, p.y - gesture.p0.y, width, height)
        : resizeRect(gesture.orig, gesture.handle, p, width, height);
      gesture.rect = r;
      const box = find(gesture.box);
      const n = nodes.get(gesture.box);
      if (box && n) place({ ...box, ...r }, n);
      renderHandles(r);
    }
  });
  const endGesture = (/** @type {PointerEvent} */ ev, cancelled = false) => {
    const g = gesture;
    if (!g) return;
    gesture = null;
    root.releasePointerCapture?.(ev.pointerId);
    draft.setAttribute("visibility", "hidden");
    if (!armed) cross.setAttribute("visibility", "hidden");
    if (cancelled) return renderBoxes();
    if (g.kind === "draw") {
      armed = false;
      if (g.moved && g.rect) addBox(g.rect);
      else if (selected) {
        flushNudge();
        selected = null;
        renderBoxes();
      } else renderBar();
    } else if ((g.kind === "move" || g.kind === "resize") && g.moved && g.rect && !sameRect(g.rect, g.orig)) {
      update(g.box, g.rect);
    } else if (g.stale) renderBoxes();
    else renderBar();
  };
  root.addEventListener("pointerup", (ev) => endGesture(ev));
  root.addEventListener("pointercancel", (ev) => endGesture(ev, true));
  root.addEventListener("pointerleave", () => { if (!gesture && !armed) cross.setAttribute("visibility", "hidden"); });
  root.addEventListener("auxclick", (ev) => ev.preventDefault());
  stage.addEventListener("wheel", (ev) => {
    if (!id) return;
    ev.preventDefault();
    const { cx, cy } = stagePoint(ev);
    const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
    view = zoomAt(view, Math.exp(-dy * 0.0015), cx, cy, minK());
    fitted = false;
    applyView();
  }, { passive: false });
  if (typeof ResizeObserver !== "undefined") {
    new ResizeObserver(() => { if (id) (fitted ? fit() : applyView()); }).observe(stage);
  }

  // keys ---------------------------------------------------------------------------------------
  /**
   * Handle a key while the editor is shown; true when the editor took it.
   * @param {KeyboardEvent} ev
   */
  const onKey = (ev) => {
    const mod = ev.ctrlKey || ev.metaKey;
    const k = ev.key;
    if (mod && !ev.altKey && (k === "z" || k === "Z") && !ev.shiftKey) return undo(), true;
    if (mod || ev.altKey) return false;
    if (k === "Escape") {
      if (gesture) {
        gesture = null;
        draft.setAttribute("visibility", "hidden");
        renderBoxes();
        return true;
      }
      if (armed) return (armed = false), cross.setAttribute("visibility", "hidden"), renderBar(), true;
      if (selected) return flushNudge(), (selected = null), renderBoxes(), true;
      return false;
    }
    if (/^[1-9]$/.test(k)) {
      if (mode !== "boxes" && !selected) return false; // the preview labels the image
      const name = (ctx.get("labels") || [])[Number(k) - 1]?.name;
      if (!name) return ctx.notify(`there is no label ${k}: add labels in the panel on the right`, "error"), true;
      chooseLabel(name);
      return true;
    }
    switch (k) {
      case "Delete":
      case "Backspace":
        deleteSelected();
        return true;
      case "n":
      case "N":
        armed = true;
        nextLabel = lastLabel ?? nextLabel;
        setMode("boxes");
        return true;
      case "Tab":
        cycle(ev.shiftKey ? -1 : 1);
        return true;
      case "ArrowLeft":
      case "ArrowRight":
      case "ArrowUp":
      case "ArrowDown": {
        const step = ev.shiftKey ? 10 : 1;
        const dx = k === "ArrowLeft" ? -step : k === "ArrowRight" ? step : 0;
        const dy = k === "ArrowUp" ? -step : k === "ArrowDown" ? step : 0;
        if (selected) return nudgeBy(dx, dy), true;
        if (dx) return go(Math.sign(dx)), true;
        return false;
      }
      case "[":
      case "]":
        go(k === "[" ? -1 : 1);
        return true;
      case "f":
      case "F":
        fit();
        return true;
      case "b":
      case "B":
        setMode(mode === "boxes" ? "image" : "boxes");
        return true;
      case "a":
      case "A":
        acceptSelected();
        return true;
      case "c":
      case "C":
        if (!confirmBtn.hidden) confirmImage();
        return true;
      case "+":
      case "=":
      case "-": {
        const { cw, ch } = stageSize();
        view = zoomAt(view, k === "-" ? 1 / 1.25 : 1.25, cw / 2, ch / 2, minK());
        fitted = false;
        applyView();
        return true;
      }
      case " ":
        spaceHeld = true;
        stage.classList.add("jl-be-panning");
        return true;
      default:
        return false;
    }
  };
  const keydown = (/** @type {KeyboardEvent} */ ev) => {
    if (!id || ctx.dialog || !el.isConnected || isTyping(ev.target)) return;
    if (onKey(ev)) {
      ev.preventDefault();
      ev.stopImmediatePropagation(); // before the widget's own key handler on the same root
    }
  };
  const keyup = (/** @type {KeyboardEvent} */ ev) => {
    if (ev.key === " ") {
      spaceHeld = false;
      stage.classList.remove("jl-be-panning");
      if (id) ev.preventDefault();
    }
  };
  const labelsChanged = () => setLabelOrder((ctx.get("labels") || []).map((/** @type {any} */ l) => l.name));
  labelsChanged();
  ctx.model?.on?.("change:labels", labelsChanged);
  ctx.root.addEventListener("keydown", keydown, true);
  ctx.root.addEventListener("keyup", keyup, true);

  // the preview's side -------------------------------------------------------------------------
  return {
    el,
    /** Keys the editor adds, for the help. */
    keys: EDITOR_KEYS,
    /** Longest side of the display copy to ask for (device pixels). */
    displaySize() {
      const { cw, ch } = stageSize();
      return Math.min(MAX_DISPLAY, Math.ceil(Math.max(cw, ch, 640) * (globalThis.devicePixelRatio || 1)));
    },
    /** An image is being loaded (timing starts here). @param {string} next */
    begin(next) {
      if (next !== id) flushNudge();
      startedAt = performance.now();
      el.dataset.drawn = "";
    },
    /**
     * Show image `next` (display copy at `url`) with the boxes of its `row`.
     * @param {string} next
     * @param {string} url
     * @param {any} info  the preview's row: boxes, proposed_boxes, orig_width/orig_height
     */
    show(next, url, info) {
      const same = next === id && info.orig_width === width && info.orig_height === height;
      if (!same) {
        flushNudge();
        selected = null;
        armed = false;
        gesture = null;
        nudge = null;
      }
      id = next;
      row = info;
      const order = hooks.order();
      const at = order.indexOf(next);
      if (at >= 0) around = { prev: order[at - 1] ?? null, next: order[at + 1] ?? null };
      width = Number(info.orig_width || info.width || 1);
      height = Number(info.orig_height || info.height || 1);
      boxes = info.boxes ?? [];
      proposed = info.proposed_boxes ?? [];
      pending.clear();
      if (boxes.length || proposed.length) mode = "boxes";
      else if (!same && !(ctx.get("rows") || []).some((/** @type {any} */ r) => (r.boxes ?? []).length || (r.proposed_boxes ?? []).length)) mode = mode === "boxes" && lastLabel ? "boxes" : "image";
      image.alt = next;
      el.dataset.id = next;
      el.dataset.width = String(width);
      el.dataset.height = String(height);
      const drawn = () => {
        if (id !== next) return;
        requestAnimationFrame(() => {
          if (id !== next) return;
          el.dataset.drawn = next;
          el.dataset.shownMs = String(Math.round(performance.now() - startedAt));
        });
      };
      if (image.getAttribute("src") !== url) {
        image.addEventListener("load", drawn, { once: true });
        image.src = url;
      } else drawn();
      if (!same || fitted) fit();
      else applyView();
      renderBoxes();
    },
    /** Nothing shown (the preview closed or could not decode the image). */
    clear() {
      flushNudge();
      id = null;
      row = null;
      selected = null;
      gesture = null;
      armed = false;
      boxes = [];
      proposed = [];
      image.removeAttribute("src");
      el.dataset.id = "";
      el.dataset.drawn = "";
      renderBoxes();
    },
    /** Labels changed (names or order): redraw the label chooser. */
    refreshLabels: () => renderBar(),
    get current() {
      return id;
    },
    get view() {
      return { ...view };
    },
    destroy() {
      flushNudge();
      ctx.root.removeEventListener("keydown", keydown, true);
      ctx.root.removeEventListener("keyup", keyup, true);
      ctx.model?.off?.("change:labels", labelsChanged);
    },
  };
}
