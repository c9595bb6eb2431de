// @ts-check
/** Binary buffers <-> bytes and Blob URLs. View code only sees URLs and plain metadata. */

/**
 * Bytes of a buffer as anywidget delivers it (DataView), or an ArrayBuffer / typed array.
 * @param {DataView | ArrayBuffer | ArrayBufferView} buf
 * @returns {Uint8Array<ArrayBuffer>} (anywidget's buffers are never shared memory)
 */
export function bytesOf(buf) {
  if (buf instanceof ArrayBuffer) return new Uint8Array(buf);
  if (ArrayBuffer.isView(buf)) return new Uint8Array(/** @type {ArrayBuffer} */ (buf.buffer), buf.byteOffset, buf.byteLength);
  throw new TypeError("expected a DataView or ArrayBuffer");
}

/**
 * @typedef {{id: string, url: string, bytes: number, width?: number, height?: number,
 *   orig_width?: number|null, orig_height?: number|null, corrupt?: boolean, error?: string|null}} Pixels
 */

/**
 * Turn a `thumbnails` reply into one Blob URL per item (same order).
 * @param {{items: any[]}} reply
 * @param {(DataView|ArrayBuffer)[]} buffers
 * @param {(blob: Blob) => string} [makeUrl]
 * @returns {Pixels[]}
 */
export function decodeThumbnails(reply, buffers, makeUrl = (b) => URL.createObjectURL(b)) {
  const items = reply?.items ?? [];
  if (items.length !== buffers.length) {
    throw new Error(`got ${buffers.length} images for ${items.length} thumbnails`);
  }
  return items.map((meta, i) => {
    const bytes = bytesOf(buffers[i]);
    const url = makeUrl(new Blob([bytes], { type: meta.mime || "image/jpeg" }));
    return { ...meta, url, bytes: bytes.byteLength };
  });
}

/**
 * Read browser `File`s into ArrayBuffers for an `add_images` request.
 * @param {File[]} files
 * @returns {Promise<{names: string[], buffers: ArrayBuffer[]}>}
 */
export async function filesToPayload(files) {
  const buffers = await Promise.all(files.map((f) => f.arrayBuffer()));
  return { names: files.map((f) => f.name), buffers };
}
