// The standing queries panel: one card per query (text, status, collections, detection count) with
// pause/resume and a two-step delete.

import { el } from "./dom.js";
import { plural } from "./format.js";

const DELETE_ARM_MS = 4000;

/**
 * @param {HTMLElement} list
 * @param {{onSelect: (id) => void, onToggle: (query) => Promise<void>, onDelete: (query) => Promise<void>,
 *          onError: () => void}} actions - onError redraws the list after an action failed
 */
export class QueryList {
  constructor(list, actions) {
    this.list = list;
    this.actions = actions;
    this.errors = new Map(); // query id -> message of its last failed action
  }

  /**
   * @param {object[]} queries - as GET /queries answers
   * @param {Map<string, number>} counts - detections per query id
   * @param {string|null} selectedId
   */
  render(queries, counts, selectedId) {
    this.list.replaceChildren(...queries.map((q) => this.card(q, counts.get(q.id), q.id === selectedId)));
  }

  card(query, count, isSelected) {
    const paused = query.status === "paused";
    const error = this.errors.get(query.id);
    const deleteButton = el("button", { type: "button", class: "button small danger", "data-action": "delete" }, "Delete");
    deleteButton.addEventListener("click", (event) => {
      event.stopPropagation();
      this.armOrDelete(deleteButton, query);
    });
    const toggle = el(
      "button",
      {
        type: "button",
        class: "button small",
        "data-action": paused ? "resume" : "pause",
        onclick: (event) => {
          event.stopPropagation();
          this.run(query, () => this.actions.onToggle(query));
        },
      },
      paused ? "Resume" : "Pause",
    );
    return el(
      "li",
      {
        class: "query-card",
        "data-query-id": query.id,
        "aria-current": isSelected ? "true" : "false",
        tabindex: 0,
        onclick: () => this.actions.onSelect(query.id),
        onkeydown: (event) => event.key === "Enter" && this.actions.onSelect(query.id),
      },
      el(
        "div",
        { class: "query-head" },
        el("span", { class: "query-text" }, query.text),
        el("span", { class: `badge ${query.status}`, "data-role": "status" }, query.status),
      ),
      el(
        "div",
        { class: "query-meta" },
        query.collections.map((c) => el("span", { class: "chip" }, c)),
        el(
          "span",
          { class: "query-count", "data-role": "count" },
          count === undefined ? "…" : el("strong", {}, plural(count, "detection")),
        ),
      ),
      el("div", { class: "query-actions" }, toggle, deleteButton),
      error ? el("p", { class: "query-error", role: "alert" }, error) : null,
    );
  }

  /** First click arms the button; a second click within a few seconds deletes. */
  armOrDelete(button, query) {
    if (button.classList.contains("armed")) {
      this.run(query, () => this.actions.onDelete(query));
      return;
    }
    button.classList.add("armed");
    button.textContent = "Confirm delete";
    setTimeout(() => {
      button.classList.remove("armed");
      button.textContent = "Delete";
    }, DELETE_ARM_MS);
  }

  async run(query, action) {
    this.errors.delete(query.id);
    try {
      await action();
    } catch (error) {
      this.errors.set(query.id, error.message);
      this.actions.onError();
    }
  }
}
