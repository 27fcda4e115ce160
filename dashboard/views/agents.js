// The agents this daemon runs, with their model, channels and today's tokens.

import { element, heading, table } from "../dom.js";

export async function render(root, { api }) {
  const { agents } = await api.get("/api/agents");
  root.append(heading("Agents"), table("Agents", ["Agent", "Id", "Channel model", "Active channels", "Tokens today", "Budget"],
    agents.map(agent => [
      element("span", { className: "agent-name", text: agent.display_name + (agent.default ? " (default)" : "") }),
      agent.id,
      agent.channel_model,
      String(agent.active_channels),
      String(agent.tokens_today),
      agent.daily_token_budget ? `${agent.daily_token_budget}${agent.budget_spent ? " (spent)" : ""}` : "none",
    ])));
}
