// Who may talk to the agents: pairing codes waiting for approval, owners, members (those
// approved here can be revoked), allowed groups.

import { element, heading, table, when, empty, errorText, statusLine, present } from "../dom.js";

export async function render(root, { api }) {
  const status = statusLine();
  const body = element("div", { id: "access-body" });
  root.append(heading("Access"), status, body);

  async function act(action, done) {
    try {
      await action();
      status.textContent = done;
    } catch (error) {
      status.textContent = errorText(error);
    }
    await refresh();
  }

  async function refresh() {
    const access = await api.get("/api/access");
    const names = list => list.length ? element("ul", {}, list.map(name => element("li", { text: name }))) : empty("None.");
    body.replaceChildren(...present(
      element("h2", { text: "Waiting for approval" }),
      access.pending.length
        ? table("Pairing codes", ["Code", "Who", "Asked", "Expires", "Approve"], access.pending.map(pairing => [
          element("code", { text: pairing.code }),
          `${pairing.display_name} (${pairing.user_id})`,
          when(pairing.created_at),
          when(pairing.expires_at),
          element("span", { className: "actions" },
            element("button", { type: "button", text: "Approve", "aria-label": `Approve ${pairing.display_name} as a member`, "data-code": pairing.code,
              onclick: () => act(() => api.post("/api/access/approve", { code: pairing.code }), `${pairing.display_name} is now a member.`) }),
            element("button", { type: "button", text: "As owner", "aria-label": `Approve ${pairing.display_name} as an owner`,
              onclick: () => confirm(`Make ${pairing.display_name} an owner? Owners can make the agent act.`) && act(() => api.post("/api/access/approve", { code: pairing.code, owner: true }), `${pairing.display_name} is now an owner.`) })),
        ]))
        : empty("No pairing code is waiting."),
      element("h2", { text: "Approved here" }),
      access.approved.length
        ? table("Approved members", ["Who", "Authority", "Revoke"], access.approved.map(person => [
          `${person.display_name || ""} (${person.user_id})`,
          String(person.authority || "member"),
          element("button", { type: "button", text: "Revoke", "aria-label": `Revoke ${person.user_id}`,
            onclick: () => confirm(`Revoke ${person.user_id}?`) && act(() => api.post("/api/access/revoke", { user_id: person.user_id }), `${person.user_id} revoked.`) }),
        ]))
        : empty("Nobody was approved here."),
      element("h2", { text: "Owners (config)" }), names(access.owners),
      element("h2", { text: "Members (config)" }), names(access.members),
      element("h2", { text: "Allowed groups" }), names(access.groups),
      access.warnings.length ? element("ul", { className: "warnings" }, access.warnings.map(text => element("li", { text }))) : null));
  }
  await refresh();
}
