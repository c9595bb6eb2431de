import { describe, expect, it } from "vitest";
import { ApiError, createApi } from "../api.js";
import { bytesOf, decodeThumbnails } from "../codec.js";
import { PixelCache } from "../pixels.js";

describe("codec", () => {
  it("reads exactly the bytes a DataView covers (offset into a larger buffer)", () => {
    const buf = new Uint8Array([9, 9, 1, 2, 3, 9]).buffer;
    expect([...bytesOf(new DataView(buf, 2, 3))]).toEqual([1, 2, 3]);
    expect([...bytesOf(new Uint8Array([4, 5]))]).toEqual([4, 5]);
  });
  it("turns a thumbnails reply into one URL per item, with metadata and sizes", () => {
    const made = [];
    const out = decodeThumbnails(
      { items: [{ id: "a", width: 2, mime: "image/jpeg" }, { id: "b", corrupt: true }] },
      [new DataView(new Uint8Array([1, 2, 3]).buffer), new DataView(new Uint8Array([4]).buffer)],
      (blob) => { made.push(blob); return `blob:${made.length}`; },
    );
    expect(out.map((p) => [p.id, p.url, p.bytes])).toEqual([["a", "blob:1", 3], ["b", "blob:2", 1]]);
    expect(out[1].corrupt).toBe(true);
    expect(made[0].type).toBe("image/jpeg");
  });
  it("refuses a reply whose buffers do not match its items", () => {
    expect(() => decodeThumbnails({ items: [{ id: "a" }] }, [], () => "x")).toThrow(/1 thumbnails/);
  });
});

describe("pixel cache", () => {
  it("keeps only `capacity` entries and revokes the least recently used", () => {
    const revoked = [];
    const cache = new PixelCache(2, (u) => revoked.push(u));
    cache.put({ id: "a", url: "u:a" });
    cache.put({ id: "b", url: "u:b" });
    cache.get("a"); // a is now more recent than b
    cache.put({ id: "c", url: "u:c" });
    expect(cache.has("b")).toBe(false);
    expect(cache.has("a") && cache.has("c")).toBe(true);
    expect(revoked).toEqual(["u:b"]);
    cache.resize(1);
    expect(revoked).toEqual(["u:b", "u:a"]);
    cache.clear();
    expect(revoked).toEqual(["u:b", "u:a", "u:c"]);
    expect(cache.size).toBe(0);
  });
});

describe("api", () => {
  it("returns the reply and buffers, sending op with the message", async () => {
    const seen = [];
    const call = createApi(async (name, msg, opts) => { seen.push([name, msg, opts.buffers]); return [{ ok: 1 }, ["B"]]; });
    const out = await call("label", { ids: ["a"] }, { buffers: ["x"] });
    expect(out).toEqual({ reply: { ok: 1 }, buffers: ["B"] });
    expect(seen).toEqual([["_request", { ids: ["a"], op: "label" }, ["x"]]]);
  });
  it("turns an error reply into an ApiError with the kernel's message", async () => {
    const call = createApi(async () => [{ error: "invalid label name 'a b'", type: "InvalidLabelName" }, []]);
    await expect(call("label")).rejects.toThrow(ApiError);
    await expect(call("label")).rejects.toThrow("invalid label name 'a b'");
  });
  it("says the kernel did not answer instead of hanging", async () => {
    const never = (_n, _m, opts) => new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason)));
    const busy = [];
    const call = createApi(never, { onBusy: (d) => busy.push(d) });
    await expect(call("sync", {}, { timeout: 20 })).rejects.toThrow(/did not answer "sync" within/);
    expect(busy).toEqual([1, -1]);
  });
});
