// @ts-check
/** A bounded cache of thumbnail Blob URLs: only a few pages of pixels stay in the browser. */

export class PixelCache {
  /**
   * @param {number} capacity  entries kept (a few pages' worth)
   * @param {(url: string) => void} [revoke]
   */
  constructor(capacity, revoke = (u) => URL.revokeObjectURL(u)) {
    this.capacity = capacity;
    this.revoke = revoke;
    /** @type {Map<string, import("./codec.js").Pixels>} insertion order = recency */
    this.map = new Map();
  }

  /** @param {string} id */
  get(id) {
    const hit = this.map.get(id);
    if (hit) {
      this.map.delete(id);
      this.map.set(id, hit);
    }
    return hit;
  }

  /** @param {string} id */
  has(id) {
    return this.map.has(id);
  }

  /**
   * Store pixels, evicting (and revoking) the least recently used beyond capacity.
   * @param {import("./codec.js").Pixels} pixels
   */
  put(pixels) {
    const old = this.map.get(pixels.id);
    if (old && old.url !== pixels.url) this.revoke(old.url);
    this.map.delete(pixels.id);
    this.map.set(pixels.id, pixels);
    this.trim();
  }

  /** Evict beyond capacity. */
  trim() {
    while (this.map.size > this.capacity) {
      const [id, oldest] = this.map.entries().next().value;
      this.map.delete(id);
      this.revoke(oldest.url);
    }
  }

  /** @param {number} capacity */
  resize(capacity) {
    this.capacity = capacity;
    this.trim();
  }

  /** Drop everything (e.g. after a sync changed files). */
  clear() {
    for (const p of this.map.values()) this.revoke(p.url);
    this.map.clear();
  }

  get size() {
    return this.map.size;
  }
}
