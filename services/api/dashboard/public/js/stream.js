// A query's live detections: the SSE stream /queries/{id}/stream (services/api/routes/stream.py).
//
// The browser's own EventSource cannot send headers, so the `eventsource` package (the WHATWG
// EventSource over fetch) reads the stream with the page's credentials. It reconnects by itself after
// a dropped connection and sends Last-Event-ID, so the server resumes exactly after the last event seen.

import { EventSource } from "eventsource";

/**
 * Open the stream of one query.
 * @param {import("./api.js").LookoutApi} api
 * @param {string} queryId
 * @param {{onOpen: () => void, onDetection: (feature: object) => void, onState: (state: string, text: string) => void}} handlers
 * @returns {{close: () => void}}
 */
export function watchDetections(api, queryId, { onOpen, onDetection, onState }) {
  let source = null;
  let closed = false;

  const open = () => {
    onState("connecting", "connecting…");
    source = new EventSource(api.url(`queries/${encodeURIComponent(queryId)}/stream`), {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...api.authHeaders() } }),
    });
    source.addEventListener("open", () => {
      onState("live", "live");
      onOpen();
    });
    source.addEventListener("detection", (event) => onDetection(JSON.parse(event.data)));
    source.addEventListener("error", (event) => {
      if (closed) return;
      if (event.code === 401) {
        // Refused credentials end the stream for good: reopen it once a key is given.
        source.close();
        onState("offline", "API key needed");
        api.refreshKey(event.message).then(() => closed || open());
      } else if (source.readyState === EventSource.CLOSED) {
        onState("offline", event.code ? `stream refused (HTTP ${event.code})` : "stream closed");
      } else {
        onState("connecting", "reconnecting…");
      }
    });
  };

  open();
  return {
    close() {
      closed = true;
      source?.close();
    },
  };
}
