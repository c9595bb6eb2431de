// @ts-check
/** anywidget entry point: `render` builds the app and returns its cleanup. */
import { createApp } from "./app.js";

export default {
  /** @param {{model: any, el: HTMLElement, experimental: {invoke: import("./api.js").Invoke}}} args */
  render({ model, el, experimental }) {
    const app = createApp({ model, el, invoke: experimental.invoke });
    return () => app.destroy();
  },
};
