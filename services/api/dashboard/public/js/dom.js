// Building DOM nodes from data. Text always goes in as text nodes, never as HTML: query texts and
// STAC ids come from users and catalogs.

/**
 * el("span", {class: "badge"}, "text", otherNode): an element with attributes and children.
 * Attributes whose value is null, undefined or false are left out; `true` sets an empty attribute.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
