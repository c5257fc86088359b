// The "register a query" form. The API validates (services/contracts/query.py); its 422 answer names
// each problem's field, and the message is shown next to that field.

import { ApiError } from "./api.js";

const GENERAL = "*";

/** The form field an API error belongs to: "aoi.coordinates.0" -> "aoi"; unknown fields -> "*". */
export function formField(form, apiField) {
  const name = String(apiField ?? "").split(".")[0];
  return form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) ? name : GENERAL;
}

export class RegisterForm {
  /**
   * @param {HTMLFormElement} form
   * @param {{submit: (body: object) => Promise<object>, viewPolygon: () => object, onRegistered: (query) => void}} options
   */
  constructor(form, { submit, viewPolygon, onRegistered }) {
    this.form = form;
    this.submit = submit;
    this.onRegistered = onRegistered;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    form.querySelector("#aoi-from-view").addEventListener("click", () => {
      form.elements.aoi.value = JSON.stringify(viewPolygon());
      this.showErrors([]);
    });
  }

  /** Fill the collections field when it is empty (with what the last registered query watched). */
  suggestCollections(collections) {
    const input = this.form.elements.collections;
    if (!input.value && collections.length) input.value = collections.join(", ");
  }

  showErrors(errors) {
    const messages = new Map();
    for (const { field, message } of errors) {
      const key = formField(this.form, field);
      const text = key === GENERAL && field && field !== "body" ? `${field}: ${message}` : message;
      messages.set(key, [...(messages.get(key) ?? []), text]);
    }
    for (const slot of this.form.querySelectorAll("[data-error-for]")) {
      const key = slot.dataset.errorFor;
      slot.textContent = (messages.get(key) ?? []).join("; ");
      const input = this.form.elements[key];
      if (input) input.setAttribute("aria-invalid", messages.has(key) ? "true" : "false");
    }
  }

  /** The request body, or field errors found before asking the API (the AOI must be JSON). */
  body() {
    const f = this.form.elements;
    const body = {
      text: f.text.value,
      collections: f.collections.value.split(",").map((c) => c.trim()).filter(Boolean),
      threshold: Number(f.threshold.value),
      min_area_m2: Number(f.min_area_m2.value),
    };
    if (f.start.value) body.start = `${f.start.value}Z`;
    try {
      body.aoi = JSON.parse(f.aoi.value);
    } catch (error) {
      const reason = f.aoi.value.trim() ? `not valid JSON (${error.message})` : "is required";
      return { errors: [{ field: "aoi", message: reason }] };
    }
    return { body };
  }

  async send() {
    const { body, errors } = this.body();
    if (errors) {
      this.showErrors(errors);
      return;
    }
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const query = await this.submit(body);
      this.showErrors([]);
      this.form.elements.text.value = "";
      this.onRegistered(query);
    } catch (error) {
      const fieldErrors = error instanceof ApiError ? error.fieldErrors : [];
      this.showErrors(fieldErrors.length ? fieldErrors : [{ field: GENERAL, message: error.message }]);
    } finally {
      button.disabled = false;
    }
  }
}
