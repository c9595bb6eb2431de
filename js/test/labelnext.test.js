// @vitest-environment jsdom
import { beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../app.js";
import { renderJob } from "../autolabel.js";
import { isLabelNext } from "../filters.js";
import { baseState, FakeModel, fakeInvoke, stubUrls, tick } from "./fake.js";

beforeEach(() => {
  document.body.innerHTML = "";
  stubUrls();
});

function mount(state = {}, handlers = {}) {
  const model = new FakeModel(baseState(state));
  const { invoke, calls } = fakeInvoke(handlers);
  const el = document.body.appendChild(document.createElement("div"));
  const app = createApp({ model, el, invoke });
  return { model, calls, root: app.root };
}

describe("Label next", () => {
  it("is offered on Unlabeled and To Be Confirmed only, and asks the kernel for 20", async () => {
    const { model, calls, root } = mount({ tab: "all" });
    expect(root.querySelector("[data-action=label-next]")).toBeNull();
    model.set("tab", "unlabeled");
    await tick();
    const button = root.querySelector("[data-action=label-next]");
    expect(button.textContent).toBe("Label next (20)");
    button.click();
    await tick();
    expect(calls.at(-1).msg).toEqual({ op: "label_next", n: 20 });
    model.set("tab", "to_confirm");
    await tick();
    expect(root.querySelector("[data-action=label-next]")).not.toBeNull();
  });
  it("names its ids filter apart from the random sample", async () => {
    const { model, root } = mount({ tab: "unlabeled", label_next: ["b", "a"], filters: { ids: ["b", "a"] } });
    expect(root.querySelector("[data-filter=ids]").textContent).toMatch(/^label next: 2/);
    model.set("filters", { ids: ["c"] });
    await tick();
    expect(root.querySelector("[data-filter=ids]").textContent).toMatch(/^random sample of 1/);
    expect(isLabelNext(["a", "b"], ["b", "a"])).toBe(false);
    expect(isLabelNext(["a"], null)).toBe(false);
  });
  it("a finished job says what to do next, as text", () => {
    const el = document.createElement("div");
    renderJob(el, { status: "done", result: { next_step: "<b>label</b> the 20 suggested next" } }, () => {});
    expect(el.querySelector(".jl-job-next").textContent).toBe("Next: <b>label</b> the 20 suggested next");
    expect(el.querySelector("b")).toBeNull();
  });
});
