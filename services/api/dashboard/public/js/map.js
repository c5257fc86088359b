// The map: country outlines for orientation, every query's area of interest, the selected query's
// detections (coloured by change status, opacity by score) over the quicklooks of their scenes.
//
// No basemap tiles are reachable offline, so the style has no remote source at all: the outlines come
// from the `world-atlas` npm package served by the API, the imagery from the API's quicklooks, and
// there is no text layer (so no glyphs are needed).

import { Map as MapLibreMap, NavigationControl, ScaleControl, LngLatBounds } from "maplibre-gl";
import { feature } from "topojson-client";

const EMPTY = { type: "FeatureCollection", features: [] };
const COLORS = { new: "#f59e0b", persisting: "#22d3ee", aoi: "#a78bfa", aoiIdle: "#64748b" };
// Quicklooks kept on the map at once (the newest scenes); older ones are dropped to bound memory.
export const MAX_QUICKLOOKS = 6;
const QUICKLOOK_PREFIX = "quicklook:";
const FRESH_MS = 6000;
const MERCATOR_MAX_LAT = 85.0511;

const changeColor = ["match", ["get", "change"], "persisting", COLORS.persisting, COLORS.new];
const selected = ["boolean", ["feature-state", "selected"], false];
const fresh = ["boolean", ["feature-state", "fresh"], false];

const STYLE = {
  version: 8,
  sources: {
    countries: { type: "geojson", data: EMPTY },
    aois: { type: "geojson", data: EMPTY },
    detections: { type: "geojson", data: EMPTY, promoteId: "detection_id" },
  },
  layers: [
    { id: "background", type: "background", paint: { "background-color": "#0b1220" } },
    { id: "land", type: "fill", source: "countries", paint: { "fill-color": "#17233b" } },
    { id: "borders", type: "line", source: "countries", paint: { "line-color": "#2c3d5e", "line-width": 0.8 } },
    {
      id: "aoi-fill",
      type: "fill",
      source: "aois",
      paint: { "fill-color": COLORS.aoi, "fill-opacity": ["case", ["get", "selected"], 0.05, 0.02] },
    },
    {
      id: "aoi-line",
      type: "line",
      source: "aois",
      paint: {
        "line-color": ["case", ["get", "selected"], COLORS.aoi, COLORS.aoiIdle],
        "line-width": ["case", ["get", "selected"], 2, 1.2],
        "line-dasharray": [3, 2],
      },
    },
    {
      id: "detections-fill",
      type: "fill",
      source: "detections",
      layout: { "fill-sort-key": ["get", "acquired_ms"] }, // newer scenes on top
      paint: {
        "fill-color": changeColor,
        "fill-opacity": ["case", selected, 0.65, ["interpolate", ["linear"], ["get", "score"], 0, 0.18, 1, 0.45]],
      },
    },
    {
      id: "detections-line",
      type: "line",
      source: "detections",
      layout: { "line-sort-key": ["get", "acquired_ms"] },
      paint: {
        "line-color": ["case", selected, "#ffffff", changeColor],
        "line-width": ["case", selected, 3, fresh, 3, 1.4],
      },
    },
  ],
};

/**
 * A ring made continuous across the antimeridian. world-atlas keeps Natural Earth's spherical rings, which
 * jump from +180 to -180 where they cross it (Russia, Fiji); MapLibre would draw each jump across the
 * whole map. Longitudes past ±180 are fine (drawn on the neighbouring world copy). A ring that goes
 * around a pole (Antarctica) is closed along the edge of the Mercator world at that pole.
 */
export function continuousRing(ring) {
  let offset = 0;
  const out = [ring[0]];
  for (let i = 1; i < ring.length; i++) {
    const step = ring[i][0] - ring[i - 1][0];
    if (step > 180) offset -= 360;
    else if (step < -180) offset += 360;
    out.push([ring[i][0] + offset, ring[i][1]]);
  }
  if (offset !== 0) {
    const pole = Math.sign(ring.reduce((sum, position) => sum + position[1], 0)) * MERCATOR_MAX_LAT;
    out.push([out[out.length - 1][0], pole], [ring[0][0], pole], ring[0]);
  }
  return out;
}

function continuousPolygons(collection) {
  for (const f of collection.features) {
    const g = f.geometry;
    if (g.type === "Polygon") g.coordinates = g.coordinates.map(continuousRing);
    if (g.type === "MultiPolygon") g.coordinates = g.coordinates.map((polygon) => polygon.map(continuousRing));
  }
  return collection;
}

/** [[west, south], [east, north]] of any GeoJSON geometry. */
export function geometryBounds(geometry) {
  const bounds = new LngLatBounds();
  const visit = (coords) => (typeof coords[0] === "number" ? bounds.extend(coords) : coords.forEach(visit));
  visit(geometry.coordinates);
  return bounds;
}

export class DetectionMap {
  /**
   * @param {HTMLElement} container
   * @param {{onSelect: (detectionId: string) => void, countriesUrl: string}} options
   */
  constructor(container, { onSelect, countriesUrl }) {
    this.map = new MapLibreMap({
      container,
      style: STYLE,
      center: [0, 20],
      zoom: 1.3,
      attributionControl: { compact: true, customAttribution: "Outlines: Natural Earth" },
    });
    this.map.addControl(new NavigationControl({ showCompass: false }), "top-right");
    this.map.addControl(new ScaleControl({ unit: "metric" }), "bottom-left");
    this.quicklooks = []; // {key, acquired, url}, oldest first
    this.selectedId = null;
    this.ready = new Promise((resolve) => this.map.once("load", resolve));
    this.ready.then(() => this.loadCountries(countriesUrl));

    this.map.on("click", "detections-fill", (event) => onSelect(event.features[0].properties.detection_id));
    this.map.on("mouseenter", "detections-fill", () => (this.map.getCanvas().style.cursor = "pointer"));
    this.map.on("mouseleave", "detections-fill", () => (this.map.getCanvas().style.cursor = ""));
  }

  async loadCountries(url) {
    const response = await fetch(url);
    const topology = await response.json();
    this.map.getSource("countries").setData(continuousPolygons(feature(topology, topology.objects.countries)));
  }

  /** Outline every query's AOI; the selected one stands out. */
  setAois(queries, selectedId) {
    this.map.getSource("aois").setData({
      type: "FeatureCollection",
      features: queries.map((q) => ({
        type: "Feature",
        geometry: q.aoi,
        properties: { query_id: q.id, selected: q.id === selectedId },
      })),
    });
  }

  /** Show these detection Features (GeoJSON, as the API serves them). */
  setDetections(features) {
    this.map.getSource("detections").setData({
      type: "FeatureCollection",
      features: features.map((f) => ({
        type: "Feature",
        geometry: f.geometry,
        properties: {
          ...f.properties,
          detection_id: f.id,
          acquired_ms: Date.parse(f.properties.acquired ?? f.properties.detected_at),
        },
      })),
    });
    if (this.selectedId) this.select(this.selectedId);
  }

  /** Highlight one detection (null: none). */
  select(detectionId) {
    if (this.selectedId) this.map.removeFeatureState({ source: "detections", id: this.selectedId }, "selected");
    this.selectedId = detectionId;
    if (detectionId) this.map.setFeatureState({ source: "detections", id: detectionId }, { selected: true });
  }

  /** Outline just-arrived detections brighter for a few seconds. */
  markFresh(detectionIds) {
    for (const id of detectionIds) this.map.setFeatureState({ source: "detections", id }, { fresh: true });
    setTimeout(() => {
      for (const id of detectionIds) this.map.removeFeatureState({ source: "detections", id }, "fresh");
    }, FRESH_MS);
  }

  fitTo(geometry, { maxZoom = 17 } = {}) {
    this.map.fitBounds(geometryBounds(geometry), { padding: 60, maxZoom, duration: 600 });
  }

  /**
   * Place a scene's quicklook (an image URL and its four corners) under the detections; the newest
   * acquisition is drawn on top and only the newest MAX_QUICKLOOKS scenes are kept.
   */
  addQuicklook(key, { url, coordinates, acquired }) {
    const id = QUICKLOOK_PREFIX + key;
    if (this.map.getSource(id)) return;
    this.map.addSource(id, { type: "image", url, coordinates });
    this.map.addLayer(
      { id, type: "raster", source: id, paint: { "raster-fade-duration": 0, "raster-opacity": 0.95 } },
      "aoi-fill",
    );
    this.quicklooks.push({ key, acquired, url });
    this.quicklooks.sort((a, b) => (a.acquired < b.acquired ? -1 : a.acquired > b.acquired ? 1 : 0));
    while (this.quicklooks.length > MAX_QUICKLOOKS) this.removeQuicklook(this.quicklooks[0]);
    for (const q of this.quicklooks) this.map.moveLayer(QUICKLOOK_PREFIX + q.key, "aoi-fill");
  }

  removeQuicklook(quicklook) {
    const id = QUICKLOOK_PREFIX + quicklook.key;
    this.map.removeLayer(id);
    this.map.removeSource(id);
    URL.revokeObjectURL(quicklook.url);
    this.quicklooks = this.quicklooks.filter((q) => q !== quicklook);
  }

  clearQuicklooks() {
    for (const q of [...this.quicklooks]) this.removeQuicklook(q);
  }

  /** Current view as a GeoJSON Polygon (to use as an AOI). */
  viewPolygon() {
    const b = this.map.getBounds();
    const [w, s, e, n] = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => Number(v.toFixed(6)));
    return { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
  }
}
