// Tokens and cost over the last days, by agent, model, process kind and day, with budgets.

import { element, field, heading, table, empty, present } from "../dom.js";

function tallies(caption, groups) {
  const entries = Array.isArray(groups) ? groups.map(group => [group.name || group.key || "", group]) : Object.entries(groups || {});
  if (!entries.length) return empty(`No calls (${caption.toLowerCase()}).`);
  return table(caption, ["", "Calls", "Input tokens", "Output tokens", "Cache read", "Cost (USD)"], entries.map(([name, tally]) => [
    name, String(tally.calls), String(tally.input_tokens), String(tally.output_tokens), String(tally.cache_read_tokens), tally.cost_usd.toFixed(4),
  ]));
}

export async function render(root, { api }) {
  const days = element("select", { id: "usage-days" }, [1, 7, 30, 90].map(value => element("option", { value, text: `${value} days`, selected: value === 30 })));
  const body = element("div", { id: "usage-body" });
  root.append(heading("Usage and cost"), field("Period", days), body);
  async function refresh() {
    const report = await api.get(`/api/usage?days=${days.value}`);
    const total = report.total || {};
    body.replaceChildren(...present(
      element("p", { className: "total", text: `${total.calls || 0} ${total.calls === 1 ? "call" : "calls"}, ${(total.input_tokens || 0) + (total.output_tokens || 0)} tokens, $${(total.cost_usd || 0).toFixed(4)}` }),
      report.unpriced_models && report.unpriced_models.length ? element("p", { className: "meta", text: `No price known for: ${report.unpriced_models.join(", ")}` }) : null,
      tallies("By agent", report.by_agent), tallies("By model", report.by_model),
      tallies("By process kind", report.by_process_type), tallies("By day", report.by_day),
      table("Daily budgets", ["Agent", "Tokens today", "Budget"], (report.budgets || []).map(budget => [
        budget.agent, String(budget.tokens_today), budget.daily_token_budget ? `${budget.daily_token_budget}${budget.budget_spent ? " (spent)" : ""}` : "none",
      ]))));
  }
  days.addEventListener("change", refresh);
  await refresh();
}
