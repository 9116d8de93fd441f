// Building the page's elements: text always goes in as text, never as HTML, so nothing
// a user wrote can run as code.

let lastId = 0;

/** A new id for pairing a label with its control. */
export function uid(prefix = "f") {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

/**
 * An element: `h("button", { type: "button", onclick }, "Save")`. Props named on… are
 * listeners; `value`, `checked`, `disabled`, `selected` and `hidden` are set as
 * properties (after the children, so a select's value finds its option); `false` and
 * `null` props are left out; everything else is an attribute.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (["value", "checked", "disabled", "selected", "hidden"].includes(key)) {
      el[key] = value;
    } else if (key === "class") {
      el.className = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/**
 * A labelled control: `field("Title", h("input", { name: "title" }))`. `hint` is a
 * sentence or elements (see `charactersLeft`) shown under it and read with it.
 */
export function field(label, control, hint) {
  const id = control.id || uid(control.name || "f");
  control.id = id;
  const hints = (Array.isArray(hint) ? hint : [hint])
    .filter(Boolean)
    .map((item) => (typeof item === "string" ? h("small", { class: "hint" }, item) : item));
  hints.forEach((item, index) => (item.id ||= `${id}-hint${index ? index + 1 : ""}`));
  if (hints.length) control.setAttribute("aria-describedby", hints.map((item) => item.id).join(" "));
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hints);
}

/**
 * A hint that counts what is left of the `max` characters of `control` as it is
 * typed, and marks it when few are left; `control` takes `max` as its maxlength.
 */
export function charactersLeft(control, max) {
  control.maxLength = max;
  const hint = h("small", { class: "hint count" });
  const update = () => {
    const left = max - control.value.length;
    hint.textContent = left === 1 ? "1 character left" : `${left.toLocaleString()} characters left`;
    hint.classList.toggle("near", left <= Math.max(10, max / 10));
  };
  control.addEventListener("input", update);
  update();
  return hint;
}

/** `<select>` of `[value, text]` pairs with `selected` chosen. */
export function select(name, options, selected) {
  return h(
    "select",
    { name },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** A form whose submit runs `onSubmit(values, form)`, its button busy meanwhile. */
export function form(props, onSubmit, ...children) {
  const el = h("form", props, ...children);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = [...el.querySelectorAll("button")];
    buttons.forEach((b) => (b.disabled = true));
    el.setAttribute("aria-busy", "true");
    try {
      await onSubmit(Object.fromEntries(new FormData(el)), el);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
      el.removeAttribute("aria-busy");
    }
  });
  return el;
}

/**
 * A data table with a header row: each of `columns` is a column's heading, or "" for
 * an unlabelled column of actions; `caption` may be null. Each cell carries its
 * column's heading (`data-label`), which a phone shows beside it when each row is a card.
 */
export function table(props, caption, columns, rows) {
  const heading = columns.map((text) => (text ? h("th", { scope: "col" }, text) : h("td")));
  const body = h("tbody", {}, rows);
  for (const row of body.rows) {
    [...row.cells].forEach((cell, i) => {
      if (columns[i] && cell.tagName === "TD") cell.dataset.label = columns[i];
    });
  }
  return h(
    "table",
    { class: "grid", ...props },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, heading)),
    body,
  );
}

/**
 * A link to a view of the page at `href`: a plain click runs `follow` in this page
 * (which puts `href` in the address bar), while a middle click, a click with a
 * modifier key or the browser's "copy link" use the address itself.
 */
export function link(href, follow, props, ...children) {
  const el = h("a", { href, ...props }, ...children);
  el.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    follow();
  });
  return el;
}

/** A button that runs `action` and is disabled while it does. */
export function button(text, action, props = {}) {
  const el = h("button", { type: "button", ...props }, text);
  el.addEventListener("click", async () => {
    el.disabled = true;
    try {
      await action(el);
    } finally {
      if (el.isConnected) el.disabled = false;
    }
  });
  return el;
}

/** A date and time the reader's way, from an RFC 3339 timestamp. */
export function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? timestamp : date.toLocaleString();
}

/** `DRAFT` → `Draft`, `SCI_FI` → `Sci fi`. */
export function words(name) {
  if (!name) return "";
  const lower = String(name).toLowerCase().replaceAll("_", " ");
  return lower.charAt(0).toUpperCase() + lower.slice(1);
}
