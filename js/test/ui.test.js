// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from "vitest";
import { checkUploads } from "../addimages.js";
import { createApp } from "../app.js";
import { deleteImagesDialog, deleteLabelDialog, labelNameProblem, renameDialog } from "../dialogs.js";
import { renderGrid } from "../grid.js";
import { baseState, FakeModel, fakeInvoke, rows, stubUrls, tick } from "./fake.js";

const HOSTILE = "<img src=x onerror=alert(1)>.png";

beforeEach(() => {
  document.body.innerHTML = "";
  stubUrls();
});

function mount(state = {}, handlers = {}) {
  const model = new FakeModel(baseState(state));
  const { invoke, calls } = fakeInvoke(handlers);
  const el = document.createElement("div");
  document.body.appendChild(el);
  const app = createApp({ model, el, invoke });
  return { model, calls, app, el, root: app.root };
}

const key = (target, k, extra = {}) => target.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, ...extra }));

describe("text-only rendering", () => {
  it("shows a hostile file name as text, never as markup", () => {
    const grid = document.createElement("div");
    const row = { ...rows(1)[0], id: `dir/${HOSTILE}`, labels: ["cat"] };
    renderGrid(grid, [row], { tab: "all", selection: new Set(), focus: -1, pixels: () => undefined, onCheck() {}, onOpen() {}, onFocus() {} });
    expect(grid.querySelector(".jl-name").textContent).toBe(HOSTILE);
    expect(grid.querySelectorAll("img").length).toBe(1); // only the thumbnail itself
    expect(grid.querySelector("img[src=x]")).toBeNull();
  });
  it("renders a dialog's label name as text", async () => {
    const root = document.body.appendChild(document.createElement("div"));
    const ctx = { root, dialog: null, call: async () => ({ reply: { images: 3, only: 1 }, buffers: [] }) };
    await deleteLabelDialog(ctx, "<b>x</b>");
    expect(root.querySelector("b")).toBeNull();
    expect(root.querySelector(".jl-dialog-title").textContent).toBe('Delete label "<b>x</b>"');
  });
});

describe("dialogs", () => {
  it("delete label offers three modes with the counts of images touched", async () => {
    const root = document.body.appendChild(document.createElement("div"));
    const sent = [];
    const ctx = { root, dialog: null, call: async (op, msg) => { sent.push([op, msg]); return { reply: { images: 7, only: 4 }, buffers: [] }; } };
    await deleteLabelDialog(ctx, "cat");
    const texts = [...root.querySelectorAll(".jl-radio")].map((r) => r.textContent);
    expect(texts).toHaveLength(3);
    expect(texts[0]).toMatch(/7 image\(s\) lose "cat"/);
    expect(texts[1]).toMatch(/4 image\(s\) that have only this label/);
    expect(texts[2]).toMatch(/source files/);
    root.querySelectorAll("input[type=radio]")[1].checked = true;
    root.querySelector(".jl-btn-danger").click();
    await tick();
    expect(sent.at(-1)).toEqual(["delete_label", { name: "cat", mode: "samples" }]);
  });
  it("rename warns about a merge and validates the name inline", async () => {
    const root = document.body.appendChild(document.createElement("div"));
    const sent = [];
    const ctx = { root, dialog: null, call: async (op, msg) => { sent.push([op, msg]); return { reply: {}, buffers: [] }; } };
    const dialog = renameDialog(ctx, "cat", [{ name: "cat", count: 5 }, { name: "dog", count: 2 }]);
    const input = root.querySelector(".jl-dialog input");
    input.value = "dog";
    input.dispatchEvent(new Event("input"));
    expect(root.querySelector(".jl-hint").textContent).toMatch(/merged into "dog"/);
    expect(dialog.buttons[1].textContent).toBe("Merge");
    input.value = "bad name";
    input.dispatchEvent(new Event("input"));
    expect(dialog.buttons[1].disabled).toBe(true);
    expect(root.querySelector(".jl-hint").textContent).toMatch(/no spaces/);
    input.value = "feline";
    input.dispatchEvent(new Event("input"));
    dialog.buttons[1].click();
    await tick();
    expect(sent).toEqual([["rename_label", { old: "cat", new: "feline" }]]);
    expect(root.querySelector(".jl-dialog")).toBeNull();
  });
  it("keeps the dialog open and shows the kernel's error", async () => {
    const root = document.body.appendChild(document.createElement("div"));
    const ctx = { root, dialog: null, call: async () => { throw new Error("no label 'cat'"); } };
    renameDialog(ctx, "cat", [{ name: "cat", count: 1 }]);
    const input = root.querySelector(".jl-dialog input");
    input.value = "x1";
    input.dispatchEvent(new Event("input"));
    root.querySelector(".jl-btn-primary").click();
    await tick();
    expect(root.querySelector(".jl-dialog-error").textContent).toBe("no label 'cat'");
  });
  it("delete images warns about source files only when asked to delete them", async () => {
    const root = document.body.appendChild(document.createElement("div"));
    const sent = [];
    const ctx = { root, dialog: null, call: async (op, msg) => { sent.push([op, msg]); return { reply: {}, buffers: [] }; } };
    deleteImagesDialog(ctx, ["a", "b"]);
    const warn = root.querySelector(".jl-warn");
    expect(warn.hidden).toBe(true);
    const box = root.querySelector("input[type=checkbox]");
    box.click();
    expect(warn.hidden).toBe(false);
    expect(warn.textContent).toMatch(/other versions/);
    root.querySelector(".jl-btn-danger").click();
    await tick();
    expect(sent).toEqual([["delete_images", { ids: ["a", "b"], delete_sources: true }]]);
  });
  it("checks label names and upload limits like the kernel", () => {
    expect(labelNameProblem("cat_1-x")).toBeNull();
    expect(labelNameProblem("a".repeat(33))).toMatch(/at most 32/);
    expect(labelNameProblem("")).toMatch(/type/);
    const MB = 1024 * 1024;
    const limits = { file: 5 * MB, batch: 8 * MB };
    expect(checkUploads([{ name: "a.JPG", size: MB }], limits)).toEqual([]);
    expect(checkUploads([{ name: "a.gif", size: 10 }], limits)[0]).toMatch(/not a JPG/);
    expect(checkUploads([{ name: "a.png", size: 6 * MB }], limits)[0]).toMatch(/over the 5.00 MB limit/);
    const batch = checkUploads([{ name: "a.png", size: 4 * MB }, { name: "b.png", size: 4.5 * MB }], limits);
    expect(batch).toHaveLength(1);
    expect(batch[0]).toMatch(/smaller batches/);
  });
});

describe("the app", () => {
  it("has the JupyterLab shortcut guard and a tab order stop on its root", () => {
    const { root } = mount();
    expect(root.hasAttribute("data-lm-suppress-shortcuts")).toBe(true);
    expect(root.tabIndex).toBe(0);
  });
  it("shows tabs with counts and switches tab through the model", () => {
    const { model, root } = mount({ counts: { all: 6, unlabeled: 4, labeled: 2, to_confirm: 0 } });
    const tabs = [...root.querySelectorAll(".jl-tab")];
    expect(tabs.map((t) => t.textContent)).toEqual(["All6", "Unlabeled4", "Labeled2", "To Be Confirmed0"]);
    tabs[2].click();
    expect(model.get("tab")).toBe("labeled");
    expect(model.saved).toBeGreaterThan(0);
  });
  it("requests the page's thumbnails once and fills the images", async () => {
    const { calls, root } = mount();
    await tick();
    const thumbCalls = calls.filter((c) => c.msg.op === "thumbnails");
    expect(thumbCalls).toHaveLength(1);
    expect(thumbCalls[0].msg.ids).toHaveLength(6);
    expect([...root.querySelectorAll(".jl-img")].every((img) => img.src.startsWith("blob:"))).toBe(true);
  });
  it("click + shift-click selects a range; a number key labels it", async () => {
    const { model, calls, root } = mount();
    const boxes = root.querySelectorAll(".jl-check");
    boxes[1].dispatchEvent(new MouseEvent("click", { bubbles: true }));
    boxes[3].dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    expect(model.get("selection")).toEqual(["img-1.png", "img-2.png", "img-3.png"]);
    await tick();
    expect(root.querySelector(".jl-counter").textContent).toBe("3 selected");
    expect(root.querySelectorAll(".jl-cell.jl-selected")).toHaveLength(3);
    key(root, "2");
    await tick();
    expect(calls.at(-1).msg).toEqual({ op: "label", ids: ["img-1.png", "img-2.png", "img-3.png"], names: ["dog"] });
  });
  it("on To Be Confirmed a number key edits the proposal instead", async () => {
    const { model, calls, root } = mount({ tab: "to_confirm", selection: ["img-0.png"] });
    key(root, "1");
    await tick();
    expect(calls.at(-1).msg).toEqual({ op: "set_proposal", ids: ["img-0.png"], names: ["cat"] });
    expect(model.get("tab")).toBe("to_confirm");
  });
  it("arrows move the focus, space selects the focused image, Ctrl+Z undoes", async () => {
    const { model, calls, root } = mount();
    key(root, "ArrowRight");
    key(root, "ArrowRight");
    key(root, " ");
    expect(model.get("selection")).toEqual(["img-1.png"]);
    key(root, "z", { ctrlKey: true });
    await tick();
    expect(calls.at(-1).msg.op).toBe("undo");
  });
  it("shows a kernel error as a message, not a silent failure", async () => {
    const { root } = mount({ selection: ["img-0.png"] }, { label: async () => [{ error: "storage is read-only", type: "StorageError" }, []] });
    key(root, "1");
    await tick();
    await tick();
    expect(root.querySelector(".jl-notice-error").textContent).toMatch(/storage is read-only/);
  });
  it("the help popover lists the shortcuts; Escape closes it", () => {
    const { root } = mount();
    key(root, "?");
    expect(root.querySelector(".jl-help").textContent).toMatch(/Ctrl \+ Z/);
    key(root, "Escape");
    expect(root.querySelector(".jl-help")).toBeNull();
  });
  it("To Be Confirmed shows estimated precision and confirm/reject buttons", async () => {
    const { calls, root } = mount({ tab: "to_confirm", estimated_precision: 0.962, counts: { all: 6, unlabeled: 0, labeled: 0, to_confirm: 6 }, selection: ["img-2.png"] });
    expect(root.querySelector(".jl-precision").textContent).toMatch(/96\.2%/);
    expect(root.querySelector("[data-action=confirm-all]").textContent).toBe("Confirm all (6)");
    root.querySelector("[data-action=reject-selected]").click();
    await tick();
    expect(calls.at(-1).msg).toEqual({ op: "reject", ids: ["img-2.png"] });
  });
  it("shows a finished job's notes as text under its summary, not while it runs", async () => {
    const note = `Too few labels to certify 95% precision ${HOSTILE}`;
    const job = { kind: "auto_label", params: { mode: "fast" }, status: "running", progress: 0.5, result: { notes: [note] } };
    const { model, root } = mount({ job });
    expect(root.querySelector(".jl-job-text").textContent).toMatch(/running 50%/);
    expect(root.querySelector(".jl-job-note")).toBeNull();
    model.set("job", { ...job, status: "done", progress: 1 });
    await tick();
    expect(root.querySelector(".jl-job-note").textContent).toBe(note);
    expect(root.querySelector(".jl-job img")).toBeNull();
  });
  it("checks a random sample: asks the kernel, then shows the review progress and a removable filter chip", async () => {
    const to_confirm = { all: 6, unlabeled: 0, labeled: 0, to_confirm: 6 };
    const { calls, model, root } = mount({ tab: "to_confirm", counts: to_confirm });
    const button = root.querySelector("[data-action=check-sample]");
    expect(button.textContent).toBe("Check a random sample");
    expect(root.querySelector(".jl-sample-check").hidden).toBe(true);
    button.click();
    await tick();
    expect(calls.at(-1).msg).toEqual({ op: "sample_proposals", n: 20 });
    model.set("sample_check", { size: 3, reviewed: 2, right: 1, pending: 1, estimated_precision: 0.5 });
    model.set("filters", { ids: ["img-0.png", "img-1.png", "img-2.png"] });
    await tick();
    expect(root.querySelector(".jl-sample-check").textContent)
      .toBe("Random sample: 2 of 3 reviewed, 1 confirmed as proposed; so far estimated precision of the proposals 50.0%.");
    expect(button.textContent).toBe("New random sample");
    const chip = root.querySelector("[data-filter=ids]");
    expect(chip.textContent).toMatch(/random sample of 3/);
    chip.querySelector("button").click();
    expect(model.get("filters").ids).toBeNull();
  });
  it("pings the kernel when the page becomes visible again, until destroyed", async () => {
    const { app, calls } = mount();
    await tick();
    const pings = () => calls.filter((c) => c.msg.op === "refresh").length;
    document.dispatchEvent(new Event("visibilitychange"));
    await tick();
    expect(pings()).toBe(1);
    app.destroy();
    document.dispatchEvent(new Event("visibilitychange"));
    await tick();
    expect(pings()).toBe(1);
  });
  it("cleans up: revokes its pixel URLs on destroy", async () => {
    const revoked = stubUrls();
    const { app } = mount();
    await tick();
    expect(app.pixels.size).toBe(6);
    app.destroy();
    expect(revoked).toHaveLength(6);
  });
});
