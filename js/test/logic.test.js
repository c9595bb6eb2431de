// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { actionFor, isTyping, moveFocus } from "../keyboard.js";
import { selectRange, toggle, togglePage } from "../selection.js";
import { suggest } from "../typeahead.js";
import { labelsOf } from "../labelpanel.js";
import { autoLabelRequest, jobSummary } from "../autolabel.js";
import { precisionText } from "../confirm.js";

describe("selection", () => {
  const order = ["a", "b", "c", "d", "e"];
  it("toggles one id on and off", () => {
    expect(toggle([], "b")).toEqual(["b"]);
    expect(toggle(["a", "b"], "b")).toEqual(["a"]);
  });
  it("selects a range from the anchor in either direction, keeping the rest", () => {
    expect(selectRange(["x"], order, "b", "d")).toEqual(["x", "b", "c", "d"]);
    expect(selectRange([], order, "d", "b")).toEqual(["b", "c", "d"]);
  });
  it("without an anchor on the page, a shift-click selects just that id", () => {
    expect(selectRange([], order, null, "c")).toEqual(["c"]);
    expect(selectRange([], order, "zz", "c")).toEqual(["c"]);
  });
  it("select page adds the page, and removes it when already all selected", () => {
    expect(togglePage(["x", "a"], ["a", "b"])).toEqual(["x", "a", "b"]);
    expect(togglePage(["x", "a", "b"], ["a", "b"])).toEqual(["x"]);
  });
});

describe("keyboard map", () => {
  it("maps digits 1-9 to label indexes 0-8 and ignores 0", () => {
    expect(actionFor({ key: "1" })).toEqual({ type: "label", index: 0 });
    expect(actionFor({ key: "9" })).toEqual({ type: "label", index: 8 });
    expect(actionFor({ key: "0" })).toBeNull();
  });
  it("maps arrows, space, enter, escape, undo and help", () => {
    expect(actionFor({ key: "ArrowDown" })).toEqual({ type: "move", dx: 0, dy: 1 });
    expect(actionFor({ key: "ArrowLeft" })).toEqual({ type: "move", dx: -1, dy: 0 });
    expect(actionFor({ key: " " })).toEqual({ type: "toggle" });
    expect(actionFor({ key: "Enter" })).toEqual({ type: "preview" });
    expect(actionFor({ key: "Escape" })).toEqual({ type: "escape" });
    expect(actionFor({ key: "z", ctrlKey: true })).toEqual({ type: "undo" });
    expect(actionFor({ key: "z", metaKey: true })).toEqual({ type: "undo" });
    expect(actionFor({ key: "?" })).toEqual({ type: "help" });
  });
  it("leaves keys alone while typing in a text field, except Escape", () => {
    const input = document.createElement("input");
    expect(isTyping(input)).toBe(true);
    expect(actionFor({ key: "1", target: input })).toBeNull();
    expect(actionFor({ key: "Escape", target: input })).toEqual({ type: "escape" });
    const box = document.createElement("input");
    box.type = "checkbox";
    expect(actionFor({ key: "2", target: box })).toEqual({ type: "label", index: 1 });
  });
  it("does not take browser shortcuts with modifiers", () => {
    expect(actionFor({ key: "1", ctrlKey: true })).toBeNull();
    expect(actionFor({ key: "c", metaKey: true })).toBeNull();
  });
  it("moves focus within the grid and clamps at the ends", () => {
    expect(moveFocus(-1, 1, 0, 4, 10)).toBe(0);
    expect(moveFocus(0, 0, 1, 4, 10)).toBe(4);
    expect(moveFocus(8, 0, 1, 4, 10)).toBe(9);
    expect(moveFocus(0, -1, 0, 4, 10)).toBe(0);
    expect(moveFocus(3, 0, 0, 4, 0)).toBe(-1);
  });
});

describe("panel helpers", () => {
  it("suggests prefix matches before substring matches", () => {
    expect(suggest(["bird", "cat", "bobcat", "catfish"], "cat")).toEqual(["cat", "catfish", "bobcat"]);
    expect(suggest(["a", "b"], "")).toEqual(["a", "b"]);
  });
  it("counts the labels of the selected rows, most frequent first", () => {
    expect(labelsOf([{ labels: ["a", "b"] }, { labels: ["b"] }])).toEqual([["b", 2], ["a", 1]]);
  });
  it("validates the auto-label form", () => {
    expect(autoLabelRequest({ mode: "precise", target_precision: "0.9", backbone: "resnet18" }))
      .toEqual({ mode: "precise", target_precision: 0.9, backbone: "resnet18", task: "classification" });
    expect(autoLabelRequest({ mode: "fast", target_precision: 0.95, backbone: "cnn", task: "detection" }).task).toBe("detection");
    expect(() => autoLabelRequest({ mode: "fast", target_precision: 0.95, backbone: "x", task: "boxes" })).toThrow(/task must be/);
    expect(() => autoLabelRequest({ mode: "fast", target_precision: "1.5", backbone: "x" })).toThrow(/between 0.5/);
  });
  it("summarises a job and the estimated precision", () => {
    expect(jobSummary({ kind: "auto_label", params: { mode: "fast" }, status: "done", result: { proposed: 12, hard: 3, skipped: {}, estimated_precision: 0.953 } }))
      .toBe("fast · done · 12 proposed · 3 hard · est. precision 95.3%");
    expect(jobSummary({ kind: "auto_label", status: "done", result: { skipped: { "a.png": "corrupt" }, accepted: 9 } }))
      .toBe("auto_label · done · 1 skipped · 9 above threshold");
    expect(precisionText(0.9612)).toMatch(/96\.1%/);
    expect(precisionText(null)).toMatch(/not known/);
  });
});
