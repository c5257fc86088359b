// The dashboard's state and wiring: the query list (refreshed every REFRESH_MS), the selected query's
// detections (loaded once, then live from its SSE stream), their scenes' quicklooks, the detail panel.

import { LookoutApi } from "./api.js";
import { DetectionFeed, byNewest, renderDetail } from "./detections.js";
import { formatTime, plural } from "./format.js";
import { RegisterForm } from "./form.js";
import { DetectionMap, MAX_QUICKLOOKS } from "./map.js";
import { QueryList } from "./queries.js";
import { watchDetections } from "./stream.js";

const REFRESH_MS = 30_000;
const RENDER_DELAY_MS = 50; // events arriving together (one scene) are drawn in one go
const NOTICE_MS = 8000;
// Detections of the selected query loaded when it is selected; later ones arrive on the stream.
const INITIAL_DETECTIONS = 1000;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = {
  queries: [], // newest first
  counts: new Map(), // query id -> detections stored
  selectedId: null,
  detections: new Map(), // detection id -> Feature, of the selected query
  scenes: new Set(), // "collection/item_id" whose quicklook was asked for
  selectedDetection: null,
  fresh: new Set(), // detection ids arrived since the last render
  stream: null,
  loaded: false,
};

const api = new LookoutApi(new URL("../", location.href), { tenant: params.get("tenant"), askForKey });
const map = new DetectionMap($("map"), {
  onSelect: (id) => selectDetection(id),
  countriesUrl: new URL("vendor/world-atlas/countries-50m.json", location.href).href,
});
const queryList = new QueryList($("query-list"), {
  onSelect: (id) => selectQuery(id),
  onToggle: toggleQuery,
  onDelete: deleteQuery,
  onError: renderQueries,
});
const feed = new DetectionFeed($("feed"), (id) => selectDetection(id, { fly: true }));
const form = new RegisterForm($("register-form"), {
  submit: (body) => api.json("POST", "queries", body),
  viewPolygon: () => map.viewPolygon(),
  onRegistered: async (query) => {
    await refreshQueries();
    selectQuery(query.id);
  },
});
// For the browser console (and the browser tests): the map and the page state.
window.lookout = { map: map.map, state };

/** Show the API key dialog; resolves with the key typed in. */
function askForKey(reason) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = reason;
  $("key-input").value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    $("key-form").addEventListener("submit", () => resolve($("key-input").value.trim()), { once: true });
  });
}

function showNotice(text) {
  const notice = $("map-notice");
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(showNotice.timer);
  showNotice.timer = setTimeout(() => (notice.hidden = true), NOTICE_MS);
}

function setLiveState(liveState, text) {
  const pill = $("live-status");
  pill.dataset.state = liveState;
  pill.textContent = text;
}

const selectedQuery = () => state.queries.find((q) => q.id === state.selectedId) ?? null;

async function refreshQueries() {
  try {
    const { queries } = await api.get("queries");
    state.queries = queries.sort((a, b) => (a.created < b.created ? 1 : -1));
    const totals = await Promise.allSettled(
      queries.map((q) => api.get(`queries/${encodeURIComponent(q.id)}/detections?limit=1`)),
    );
    totals.forEach((total, i) => {
      if (total.status === "fulfilled") state.counts.set(queries[i].id, total.value.numberMatched);
    });
    $("list-error").hidden = true;
  } catch (error) {
    $("list-error").textContent = `Could not load the queries: ${error.message}`;
    $("list-error").hidden = false;
  }
  $("forget-key").hidden = !api.apiKey;
  if (state.selectedId && !selectedQuery()) selectQuery(null);
  renderQueries();
}

function renderQueries() {
  queryList.render(state.queries, state.counts, state.selectedId);
  $("query-empty").hidden = state.queries.length > 0;
  $("query-total").textContent = state.queries.length ? `(${state.queries.length})` : "";
  map.ready.then(() => map.setAois(state.queries, state.selectedId));
  renderCaption();
}

function renderCaption() {
  const query = selectedQuery();
  $("map-caption").hidden = !query;
  if (!query) return;
  const scenes = new Set([...state.detections.values()].map((f) => f.properties.item_id));
  const newest = [...state.detections.values()].sort(byNewest)[0];
  $("map-title").textContent = `“${query.text}”`;
  $("map-subtitle").textContent = [
    plural(state.counts.get(query.id) ?? state.detections.size, "detection"),
    plural(scenes.size, "scene") + " shown",
    newest ? `latest scene ${formatTime(newest.properties.acquired ?? newest.properties.detected_at)}` : null,
    query.status === "paused" ? "paused" : null,
  ]
    .filter(Boolean)
    .join(" · ");
}

function renderDetections() {
  const features = [...state.detections.values()];
  const fresh = new Set(state.fresh);
  state.fresh.clear();
  map.ready.then(() => {
    map.setDetections(features);
    map.markFresh([...fresh]);
  });
  feed.render(features, state.selectedDetection, fresh);
  $("feed-empty").hidden = features.length > 0;
  $("feed-total").textContent = features.length ? `(${features.length})` : "";
  renderQueries();
}

function scheduleRender() {
  if (scheduleRender.timer) return;
  scheduleRender.timer = setTimeout(() => {
    scheduleRender.timer = null;
    renderDetections();
  }, RENDER_DELAY_MS);
}

function selectQuery(id) {
  if (state.selectedId === id) return;
  state.stream?.close();
  Object.assign(state, { selectedId: id, selectedDetection: null, stream: null, loaded: false });
  state.detections.clear();
  state.scenes.clear();
  state.fresh.clear();
  map.ready.then(() => {
    map.clearQuicklooks();
    map.select(null);
  });
  $("detail-body").replaceChildren(
    Object.assign(document.createElement("p"), {
      className: "muted",
      textContent: "Click a polygon on the map, or an entry of the feed, to see its details.",
    }),
  );
  history.replaceState(null, "", id ? `#query=${id}` : location.pathname + location.search);
  renderDetections();
  const query = selectedQuery();
  if (!query) {
    setLiveState("idle", "not watching");
    return;
  }
  map.ready.then(() => map.fitTo(query.aoi));
  state.stream = watchDetections(api, id, {
    onOpen: () => state.loaded || loadDetections(id),
    onDetection: (feature) => receive(id, feature),
    onState: setLiveState,
  });
}

/** The stored detections of a just-selected query (the stream, already open, brings the later ones). */
async function loadDetections(id) {
  state.loaded = true;
  try {
    const collection = await api.get(`queries/${encodeURIComponent(id)}/detections?limit=${INITIAL_DETECTIONS}`);
    if (state.selectedId !== id) return;
    for (const f of collection.features) state.detections.set(f.id, f);
    state.counts.set(id, collection.numberMatched);
    const newestScenes = [];
    for (const f of [...state.detections.values()].sort(byNewest)) {
      const key = sceneKey(f);
      if (!newestScenes.some((g) => sceneKey(g) === key)) newestScenes.push(f);
    }
    newestScenes.slice(0, MAX_QUICKLOOKS).forEach((f) => showQuicklook(id, f));
    renderDetections();
  } catch (error) {
    state.loaded = false;
    showNotice(`Could not load the detections: ${error.message}`);
  }
}

function receive(queryId, feature) {
  if (state.selectedId !== queryId) return;
  if (!state.detections.has(feature.id)) state.counts.set(queryId, (state.counts.get(queryId) ?? 0) + 1);
  state.detections.set(feature.id, feature);
  state.fresh.add(feature.id);
  showQuicklook(queryId, feature);
  scheduleRender();
}

const sceneKey = (feature) => `${feature.properties.collection}/${feature.properties.item_id}`;

/** Put the quicklook of the feature's scene on the map (once per scene). */
async function showQuicklook(queryId, feature) {
  const key = sceneKey(feature);
  if (state.scenes.has(key)) return;
  state.scenes.add(key);
  if (!feature.properties.item_href) {
    showNotice(`Scene ${key} has no STAC item link: no quicklook to show`);
    return;
  }
  try {
    const base = `queries/${encodeURIComponent(queryId)}/detections/${encodeURIComponent(feature.id)}`;
    const quicklook = await api.get(`${base}/quicklook`);
    const preview = quicklook.links.find((l) => l.rel === "preview");
    const image = await api.blob(preview.href);
    if (state.selectedId !== queryId) return;
    await map.ready;
    map.addQuicklook(key, {
      url: URL.createObjectURL(image),
      coordinates: quicklook.coordinates,
      acquired: feature.properties.acquired ?? feature.properties.detected_at,
    });
  } catch (error) {
    showNotice(`No quicklook for scene ${key}: ${error.message}`);
  }
}

function selectDetection(id, { fly = false } = {}) {
  const feature = state.detections.get(id);
  if (!feature) return;
  state.selectedDetection = id;
  renderDetail($("detail-body"), feature);
  map.select(id);
  if (fly) map.fitTo(feature.geometry, { maxZoom: 18 });
  feed.render([...state.detections.values()], id);
}

async function toggleQuery(query) {
  const status = query.status === "paused" ? "active" : "paused";
  await api.json("PATCH", `queries/${encodeURIComponent(query.id)}`, { status });
  await refreshQueries();
}

async function deleteQuery(query) {
  await api.json("DELETE", `queries/${encodeURIComponent(query.id)}`);
  if (state.selectedId === query.id) selectQuery(null);
  await refreshQueries();
}

$("key-dialog").addEventListener("cancel", (event) => event.preventDefault()); // a key is needed to go on
$("forget-key").addEventListener("click", () => {
  api.forgetKey();
  location.reload();
});

await refreshQueries();
const fromHash = new URLSearchParams(location.hash.slice(1)).get("query");
const initial = state.queries.find((q) => q.id === fromHash) ?? state.queries.find((q) => q.status === "active");
if (initial) selectQuery(initial.id);
const lastCollections = state.queries[0]?.collections ?? [];
form.suggestCollections(lastCollections);
setInterval(refreshQueries, REFRESH_MS);
