// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from "vitest";
import { clampRect, createBoxEditor, fitView, moveRect, resizeRect, zoomAt } from "../boxeditor.js";
import { labelColor, setLabelOrder, thumbOverlay } from "../boxoverlay.js";
import { tick } from "./fake.js";

const HOSTILE = "<img src=x onerror=alert(1)>";

describe("box geometry", () => {
  it("rounds to whole pixels, orders corners, stays inside and never empties", () => {
    expect(clampRect({ xmin: 50.4, ymin: 80.6, xmax: 10.2, ymax: -5 }, 100, 60)).toEqual({ xmin: 10, ymin: 0, xmax: 50, ymax: 60 });
    expect(clampRect({ xmin: 7, ymin: 7, xmax: 7.2, ymax: 7 }, 100, 60)).toEqual({ xmin: 7, ymin: 7, xmax: 8, ymax: 8 });
    expect(clampRect({ xmin: 120, ymin: 70, xmax: 130, ymax: 90 }, 100, 60)).toEqual({ xmin: 99, ymin: 59, xmax: 100, ymax: 60 });
  });
  it("moves keep the size and stop at the edges", () => {
    const r = { xmin: 10, ymin: 10, xmax: 40, ymax: 30 };
    expect(moveRect(r, 5.4, -3.6, 100, 60)).toEqual({ xmin: 15, ymin: 6, xmax: 45, ymax: 26 });
    expect(moveRect(r, 500, 500, 100, 60)).toEqual({ xmin: 70, ymin: 40, xmax: 100, ymax: 60 });
    expect(moveRect(r, -500, 0, 100, 60)).toEqual({ xmin: 0, ymin: 10, xmax: 30, ymax: 30 });
  });
  it("a handle moves only its edges; dragged past the other edge it flips", () => {
    const r = { xmin: 10, ymin: 10, xmax: 40, ymax: 30 };
    expect(resizeRect(r, "se", { x: 60, y: 50 }, 100, 60)).toEqual({ xmin: 10, ymin: 10, xmax: 60, ymax: 50 });
    expect(resizeRect(r, "n", { x: 999, y: 2 }, 100, 60)).toEqual({ xmin: 10, ymin: 2, xmax: 40, ymax: 30 });
    expect(resizeRect(r, "w", { x: 50, y: 0 }, 100, 60)).toEqual({ xmin: 40, ymin: 10, xmax: 50, ymax: 30 });
  });
  it("fit centres the image; zoom keeps the point under the cursor", () => {
    const v = fitView(1200, 800, 600, 600);
    expect(v.k).toBe(0.5);
    expect(v.y).toBe(-200); // letterbox above and below
    const z = zoomAt(v, 4, 150, 300, 0.1);
    expect(z.k).toBe(2);
    expect(v.x + 150 / v.k).toBeCloseTo(z.x + 150 / z.k);
    expect(v.y + 300 / v.k).toBeCloseTo(z.y + 300 / z.k);
  });
});

describe("thumbnail overlay", () => {
  it("draws boxes in original pixels, proposed dashed with scores, labels as colours only", () => {
    const row = {
      boxes: [{ box_id: "a", label: HOSTILE, xmin: 1, ymin: 2, xmax: 30, ymax: 40 }],
      proposed_boxes: [{ box_id: "p", label: "dog", xmin: 5, ymin: 5, xmax: 9, ymax: 9, score: 0.876 }],
    };
    const el = /** @type {SVGElement} */ (thumbOverlay(row, 640, 480));
    expect(el.getAttribute("viewBox")).toBe("0 0 640 480");
    expect(el.querySelector(".jl-ovl-box:not(.jl-ovl-proposed)").getAttribute("d")).toBe("M1 2H30V40H1Z");
    expect(el.querySelector(".jl-ovl-proposed")).not.toBeNull();
    expect(el.querySelector(".jl-ovl-score").textContent).toBe("88%");
    expect(el.querySelector("img")).toBeNull();
    expect(thumbOverlay(row, null, 480)).toBeNull(); // size not known yet
    expect(thumbOverlay({ boxes: [] }, 640, 480)).toBeNull();
  });
  it("colours follow the label set's order", () => {
    setLabelOrder(["cat", "dog"]);
    expect(labelColor("cat")).not.toBe(labelColor("dog"));
    const cat = labelColor("cat");
    setLabelOrder(["dog", "cat"]);
    expect(labelColor("dog")).toBe(cat);
  });
});

/** An editor over a fake widget: every call is recorded and answered like the kernel would. */
function mountEditor(labels = ["cat", "dog"]) {
  document.body.innerHTML = "";
  const root = document.body.appendChild(document.createElement("div"));
  root.tabIndex = 0;
  const state = { labels: labels.map((name) => ({ name, count: 0 })), rows: [], tab: "all" };
  /** @type {any[]} */
  let boxes = [];
  /** @type {any[]} */
  let proposed = [];
  const calls = [];
  const notes = [];
  let n = 0;
  const reply = (extra = {}) => ({ reply: { id: "a.jpg", boxes, proposed_boxes: proposed, ...extra }, buffers: [] });
  const ctx = {
    root,
    dialog: null,
    model: { on() {}, off() {} },
    get: (k) => state[k],
    notify: (text, kind) => notes.push([text, kind]),
    call: async (op, msg) => {
      calls.push([op, msg]);
      if (op === "add_box") {
        const box = { box_id: `b${++n}`, ...msg.box };
        boxes = [...boxes, box];
        return reply({ box_id: box.box_id });
      }
      if (op === "update_box") {
        const edit = (b) => (b.box_id === msg.box_id ? { ...b, ...msg.changes } : b);
        const was = proposed.find((b) => b.box_id === msg.box_id);
        if (was) {
          proposed = proposed.filter((b) => b !== was);
          boxes = [...boxes, edit(was)];
        } else boxes = boxes.map(edit);
      }
      if (op === "delete_boxes") {
        boxes = boxes.filter((b) => !msg.box_ids.includes(b.box_id));
        proposed = proposed.filter((b) => !msg.box_ids.includes(b.box_id));
      }
      if (op === "accept_boxes") {
        boxes = [...boxes, ...proposed.filter((b) => msg.box_ids.includes(b.box_id))];
        proposed = proposed.filter((b) => !msg.box_ids.includes(b.box_id));
      }
      return reply();
    },
  };
  const nav = [];
  const editor = createBoxEditor(/** @type {any} */ (ctx), { nav: (d) => nav.push(d), order: () => ["a.jpg", "b.jpg"], open: (id) => nav.push(id), close() {} });
  root.appendChild(editor.el);
  const show = (given = [], props = []) => {
    boxes = given;
    proposed = props;
    editor.show("a.jpg", "blob:x", { orig_width: 800, orig_height: 600, width: 400, height: 300, boxes: given, proposed_boxes: props });
  };
  const key = (k, extra = {}) => root.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...extra }));
  const svgEl = editor.el.querySelector(".jl-be-svg");
  const pointer = (type, x, y, target = svgEl, button = 0) =>
    target.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, button, bubbles: true, cancelable: true }));
  const dragOn = (from, to, target) => {
    pointer("pointerdown", ...from, target);
    pointer("pointermove", (from[0] + to[0]) / 2, (from[1] + to[1]) / 2, svgEl);
    pointer("pointermove", ...to, svgEl);
    pointer("pointerup", ...to, svgEl);
  };
  return { editor, calls, notes, nav, show, key, dragOn, svgEl, root, get boxes() { return boxes; }, state };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
};

describe("box editor", () => {
  beforeEach(() => {
    globalThis.requestAnimationFrame = (fn) => setTimeout(fn, 0);
  });

  it("draws a box by dragging, in original pixels, with the current label", async () => {
    const t = mountEditor();
    t.show();
    // jsdom lays nothing out: the stage counts as 800 x 600, the 800 x 600 image fits at 1:1
    t.dragOn([100, 50], [300, 250], t.svgEl);
    expect(t.editor.el.querySelectorAll(".jl-be-pending").length).toBe(1); // shown before the ack
    await settle();
    expect(t.calls).toEqual([["add_box", { id: "a.jpg", box: { label: "cat", xmin: 100, ymin: 50, xmax: 300, ymax: 250 } }]]);
    expect(t.editor.el.dataset.selected).toBe("b1");
    expect(t.editor.el.dataset.pending).toBe("0");
    expect(t.editor.el.querySelector(".jl-be-pending")).toBeNull();
  });

  it("digits relabel the selected box; Delete deletes it; Tab cycles; Ctrl+Z undoes", async () => {
    const t = mountEditor();
    t.show([{ box_id: "x", label: "cat", xmin: 10, ymin: 10, xmax: 50, ymax: 50 }, { box_id: "y", label: "cat", xmin: 100, ymin: 100, xmax: 200, ymax: 200 }]);
    t.key("Tab");
    expect(t.editor.el.dataset.selected).toBe("x");
    t.key("Tab", { shiftKey: true });
    expect(t.editor.el.dataset.selected).toBe("y");
    t.key("2");
    await settle();
    expect(t.calls.at(-1)).toEqual(["update_box", { id: "a.jpg", box_id: "y", changes: { label: "dog" } }]);
    t.key("Delete");
    await settle();
    expect(t.calls.at(-1)).toEqual(["delete_boxes", { id: "a.jpg", box_ids: ["y"] }]);
    expect(t.boxes.map((b) => b.box_id)).toEqual(["x"]);
    t.key("z", { ctrlKey: true });
    await settle();
    expect(t.calls.at(-1)[0]).toBe("box_undo");
  });

  it("moves by dragging inside and resizes by a handle, one update each", async () => {
    const t = mountEditor();
    t.show([{ box_id: "x", label: "cat", xmin: 100, ymin: 100, xmax: 200, ymax: 180 }]);
    const g = t.editor.el.querySelector("[data-box-id=x] rect");
    t.dragOn([150, 150], [170, 130], g);
    await settle();
    expect(t.calls.at(-1)).toEqual(["update_box", { id: "a.jpg", box_id: "x", changes: { xmin: 120, ymin: 80, xmax: 220, ymax: 160 } }]);
    const handle = t.editor.el.querySelector("[data-handle=se]");
    t.dragOn([220, 160], [300, 260], handle);
    await settle();
    expect(t.calls.at(-1)).toEqual(["update_box", { id: "a.jpg", box_id: "x", changes: { xmin: 120, ymin: 80, xmax: 300, ymax: 260 } }]);
    expect(t.calls.length).toBe(2);
  });

  it("a burst of arrow nudges is one edit", async () => {
    const t = mountEditor();
    t.show([{ box_id: "x", label: "cat", xmin: 100, ymin: 100, xmax: 200, ymax: 180 }]);
    t.key("Tab");
    t.key("ArrowRight");
    t.key("ArrowRight");
    t.key("ArrowDown", { shiftKey: true });
    expect(t.calls).toEqual([]);
    expect(t.editor.el.dataset.pending).toBe("1");
    await new Promise((r) => setTimeout(r, 450));
    await settle();
    expect(t.calls).toEqual([["update_box", { id: "a.jpg", box_id: "x", changes: { xmin: 102, ymin: 110, xmax: 202, ymax: 190 } }]]);
  });

  it("without a selection digits choose the next box's label; N draws with the last label even over a box", async () => {
    const t = mountEditor();
    t.show([{ box_id: "x", label: "cat", xmin: 0, ymin: 0, xmax: 800, ymax: 600 }]);
    t.key("2");
    expect(t.editor.el.querySelector(".jl-be-label").value).toBe("dog");
    t.key("n");
    t.dragOn([10, 10], [60, 60], t.editor.el.querySelector("[data-box-id=x] rect"));
    await settle();
    expect(t.calls.at(-1)).toEqual(["add_box", { id: "a.jpg", box: { label: "dog", xmin: 10, ymin: 10, xmax: 60, ymax: 60 } }]);
  });

  it("proposed boxes: dashed with their score, A accepts, editing one is an update", async () => {
    const t = mountEditor();
    t.show([], [{ box_id: "p", label: "dog", xmin: 10, ymin: 10, xmax: 90, ymax: 90, score: 0.42 }, { box_id: "q", label: "cat", xmin: 300, ymin: 300, xmax: 400, ymax: 400, score: 0.9 }]);
    expect([...t.editor.el.querySelectorAll(".jl-be-proposed text")].map((e) => e.textContent).sort()).toEqual(["cat 90%", "dog 42%"]);
    expect(t.editor.el.querySelector("[data-action=confirm-image]").hidden).toBe(false);
    t.key("Tab");
    t.key("a");
    await settle();
    expect(t.calls.at(-1)).toEqual(["accept_boxes", { id: "a.jpg", box_ids: ["p"] }]);
    t.key("Tab");
    expect(t.editor.el.dataset.selected).toBe("q");
    t.key("2");
    await settle();
    expect(t.calls.at(-1)).toEqual(["update_box", { id: "a.jpg", box_id: "q", changes: { label: "dog" } }]);
    expect(t.editor.el.querySelectorAll(".jl-be-proposed").length).toBe(0); // edited: confirmed
  });

  it("renders a hostile label as text and keeps keys from the rest of the page", () => {
    const t = mountEditor([HOSTILE]);
    t.show([{ box_id: "x", label: HOSTILE, xmin: 1, ymin: 1, xmax: 9, ymax: 9 }]);
    expect(t.editor.el.querySelector(".jl-be-text").textContent).toBe(HOSTILE);
    expect(t.editor.el.querySelector("img[src=x]")).toBeNull();
    let reached = 0;
    t.root.addEventListener("keydown", () => reached++);
    const ev = new KeyboardEvent("keydown", { key: "Tab", bubbles: true, cancelable: true });
    t.root.dispatchEvent(ev);
    expect(ev.defaultPrevented).toBe(true);
    expect(reached).toBe(0);
  });

  it("with nothing selected, arrows and [ ] go to the previous / next image", () => {
    const t = mountEditor();
    t.show();
    t.key("ArrowRight");
    t.key("[");
    expect(t.nav).toEqual([1, -1]);
  });
});
