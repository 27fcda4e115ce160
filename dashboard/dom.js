// Small helpers to build the views' DOM without HTML strings (nothing a user or model wrote
// is ever parsed as markup).

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else if (name in node && !name.includes("-")) node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let nextId = 0;
export function uniqueId(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled form field: `<label>` tied to its control by id.
export function field(label, control) {
  if (!control.id) control.id = uniqueId("field");
  return element("div", { className: "field" }, element("label", { htmlFor: control.id, text: label }), control);
}

// A table with a caption (for screen readers), header cells and rows of cells.
export function table(caption, columns, rows) {
  return element("div", { className: "table-wrap" },
    element("table", {},
      element("caption", { text: caption }),
      element("thead", {}, element("tr", {}, columns.map(column => element("th", { scope: "col", text: column })))),
      element("tbody", {}, rows.map(cells => element("tr", {}, cells.map(cell => element("td", {}, cell)))))));
}

export function heading(text) {
  return element("h1", { text });
}

export function when(milliseconds) {
  if (!milliseconds) return "";
  return new Date(milliseconds).toLocaleString();
}

export function empty(text) {
  return element("p", { className: "empty", text });
}

// A status line inside a view, announced politely.
export function statusLine() {
  return element("p", { className: "status", role: "status", "aria-live": "polite" });
}

export function errorText(error) {
  return error && error.message ? error.message : String(error);
}

// The nodes among `items` (a view's optional parts are null when absent): `append` and
// `replaceChildren` would show a null as the text "null".
export function present(...items) {
  return items.filter(item => item !== null && item !== undefined && item !== false);
}
