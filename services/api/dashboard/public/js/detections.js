// The detection panel (everything about one detection) and the live feed (newest first).

import { el } from "./dom.js";
import { formatArea, formatScore, formatTime } from "./format.js";

const FEED_LENGTH = 60;

function changeBadge(change) {
  return el("span", { class: `badge ${change}` }, change);
}

/** A link to the STAC item when the browser can open it (http/https); the href as text otherwise. */
function itemLink(href) {
  if (!href) return el("span", { class: "muted" }, "not recorded");
  if (/^https?:\/\//i.test(href)) {
    return el("a", { href, target: "_blank", rel: "noopener noreferrer", "data-role": "item-link" }, "open the STAC item");
  }
  return el("code", { "data-role": "item-link" }, href);
}

/** Fill `container` with the details of one detection Feature. */
export function renderDetail(container, feature) {
  const p = feature.properties;
  container.replaceChildren(
    el("p", { class: "detail-query", "data-role": "query-text" }, `“${p.query_text}”`),
    el(
      "dl",
      {},
      el("dt", {}, "score"),
      el(
        "dd",
        { "data-role": "score" },
        `${formatScore(p.score)} (peak ${formatScore(p.score_max)})`,
        el("div", { class: "score-bar" }, el("span", { style: `width: ${Math.round(p.score * 100)}%` })),
      ),
      el("dt", {}, "area"),
      el("dd", { "data-role": "area" }, formatArea(p.area_m2)),
      el("dt", {}, "change"),
      el("dd", { "data-role": "change" }, changeBadge(p.change)),
      el("dt", {}, "acquired"),
      el("dd", { "data-role": "acquired" }, formatTime(p.acquired)),
      el("dt", {}, "detected"),
      el("dd", { "data-role": "detected" }, formatTime(p.detected_at)),
      el("dt", {}, "scene"),
      el("dd", {}, `${p.collection} / ${p.item_id}`),
      el("dt", {}, "STAC item"),
      el("dd", {}, itemLink(p.item_href)),
      el("dt", {}, "model"),
      el("dd", {}, el("code", {}, p.model)),
      el("dt", {}, "id"),
      el("dd", {}, el("code", {}, feature.id)),
    ),
  );
}

export class DetectionFeed {
  /**
   * @param {HTMLElement} list
   * @param {(detectionId: string) => void} onSelect
   */
  constructor(list, onSelect) {
    this.list = list;
    this.onSelect = onSelect;
  }

  /** Show the newest detections of `features` (any order); `freshIds` get an arrival highlight. */
  render(features, selectedId, freshIds = new Set()) {
    const newest = [...features].sort(byNewest).slice(0, FEED_LENGTH);
    this.list.replaceChildren(...newest.map((f) => this.entry(f, f.id === selectedId, freshIds.has(f.id))));
  }

  entry(feature, isSelected, isFresh) {
    const p = feature.properties;
    return el(
      "li",
      {
        class: isFresh ? "feed-item fresh" : "feed-item",
        "data-detection-id": feature.id,
        "aria-current": isSelected ? "true" : "false",
        tabindex: 0,
        onclick: () => this.onSelect(feature.id),
        onkeydown: (event) => event.key === "Enter" && this.onSelect(feature.id),
      },
      el(
        "div",
        { class: "feed-line" },
        el("span", { class: "feed-score" }, formatScore(p.score)),
        el("span", {}, formatArea(p.area_m2)),
        changeBadge(p.change),
      ),
      el("div", { class: "feed-sub" }, `${formatTime(p.acquired ?? p.detected_at)} · ${p.item_id}`),
    );
  }
}

/** Newest acquisition first (detection time when the acquisition is unknown), then by id. */
export function byNewest(a, b) {
  const ta = a.properties.acquired ?? a.properties.detected_at;
  const tb = b.properties.acquired ?? b.properties.detected_at;
  if (ta !== tb) return ta < tb ? 1 : -1;
  return a.id < b.id ? -1 : 1;
}
