// Memories: search, add, change importance, forget, and each memory's associations.

import { element, field, heading, table, empty, errorText, statusLine } from "../dom.js";

const TYPES = ["fact", "preference", "decision", "identity", "event", "observation", "goal", "todo"];

export async function render(root, { agent, api }) {
  const status = statusLine();
  const query = element("input", { id: "memory-query", type: "search" });
  const search = element("form", { className: "inline", role: "search" }, field("Search memories", query),
    element("button", { type: "submit", id: "memory-search", text: "Search" }));
  const results = element("section", { id: "memory-results", "aria-label": "Memories" });
  const detail = element("section", { id: "memory-detail", "aria-label": "Memory" });

  const content = element("textarea", { id: "memory-content", rows: 2, required: true, maxLength: 4000 });
  const type = element("select", { id: "memory-type" }, TYPES.map(name => element("option", { value: name, text: name })));
  const importance = element("input", { id: "memory-importance", type: "number", min: 0, max: 1, step: 0.05, value: "" });
  const add = element("form", { className: "stack" }, element("h2", { text: "Add a memory" }),
    field("Content", content), field("Type", type), field("Importance (0 to 1, empty for the type's default)", importance),
    element("button", { type: "submit", text: "Add memory" }));

  root.append(heading("Memories"), search, status, results, detail, add);

  function rows(memories, title) {
    results.replaceChildren(memories.length
      ? table(title, ["Memory", "Type", "Importance", ""], memories.map(memory => [
        element("span", { className: "memory-content", text: memory.content }),
        memory.memory_type,
        memory.importance.toFixed(2),
        element("button", { type: "button", text: "Details", "aria-label": `Details of: ${memory.content.slice(0, 40)}`, onclick: () => open(memory.id) }),
      ]))
      : empty("No memory matches."));
  }

  async function recent() {
    const { memories, total } = await api.get(api.agentPath(agent, "/memories?order=recent&limit=50"));
    rows(memories, `Most recent memories (${total} in all)`);
  }

  async function open(id) {
    try {
      const { memory, associations } = await api.get(api.agentPath(agent, `/memories/${encodeURIComponent(id)}`));
      const level = element("input", { id: "memory-level", type: "number", min: 0, max: 1, step: 0.05, value: memory.importance.toFixed(2) });
      const others = await Promise.all(associations.map(async association => {
        const other = association.source_id === id ? association.target_id : association.source_id;
        const text = await api.get(api.agentPath(agent, `/memories/${encodeURIComponent(other)}`)).then(found => found.memory.content, () => other);
        const arrow = association.source_id === id ? "→" : "←";
        return element("li", {}, `${arrow} ${association.relation} (${association.weight.toFixed(2)}): `,
          element("button", { type: "button", className: "link", text, onclick: () => open(other) }));
      }));
      const title = element("h2", { text: "Memory", tabIndex: -1 });
      detail.replaceChildren(title,
        element("p", { className: "memory-content", text: memory.content }),
        element("p", { className: "meta", text: `${memory.memory_type} · from ${memory.source}${memory.channel_id ? " in " + memory.channel_id : ""}` }),
        element("form", { className: "inline", onsubmit: async event => {
          event.preventDefault();
          await act(() => api.post(api.agentPath(agent, `/memories/${encodeURIComponent(id)}/importance`), { importance: Number(level.value) }), "Importance saved.");
          open(id);
        } }, field("Importance", level), element("button", { type: "submit", text: "Save importance" })),
        element("button", { type: "button", className: "danger", text: "Forget", onclick: async () => {
          if (!confirm("Forget this memory?")) return;
          await act(() => api.remove(api.agentPath(agent, `/memories/${encodeURIComponent(id)}`)), "Forgotten.");
          detail.replaceChildren();
          recent();
        } }),
        element("h3", { text: "Associations" }),
        others.length ? element("ul", { className: "associations" }, others) : empty("No associations."));
      title.focus();
    } catch (error) {
      status.textContent = errorText(error);
    }
  }

  // Runs an action and says how it went; true when it worked.
  async function act(action, done) {
    try {
      await action();
      status.textContent = done;
      return true;
    } catch (error) {
      status.textContent = errorText(error);
      return false;
    }
  }

  search.addEventListener("submit", async event => {
    event.preventDefault();
    if (!query.value.trim()) return recent();
    try {
      const found = await api.get(api.agentPath(agent, `/memories/search?q=${encodeURIComponent(query.value)}&limit=20`));
      const memories = (found.results || found.memories || []).map(hit => hit.memory || hit);
      rows(memories, `Memories matching “${query.value}”`);
      status.textContent = `${memories.length} found.`;
    } catch (error) {
      status.textContent = errorText(error);
    }
  });
  add.addEventListener("submit", async event => {
    event.preventDefault();
    const body = { content: content.value, type: type.value };
    if (importance.value !== "") body.importance = Number(importance.value);
    // On a refusal the text stays in the form to be corrected.
    if (await act(() => api.post(api.agentPath(agent, "/memories"), body), "Memory saved.")) {
      content.value = "";
      recent();
    }
  });
  await recent();
}
