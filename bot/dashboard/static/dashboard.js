// Progressive enhancement only: every page reads and works without it.
// 1. The compose form's recipient count follows the audience as it is built.
// 2. The broadcast list's counts refresh while messages go out.
"use strict";

function audienceQuery(form) {
  const keys = ["municipality", "arrondissement", "shop_type", "focus", "level", "unfinished", "language"];
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(form)) {
    if (keys.includes(key) && typeof value === "string" && value !== "") query.append(key, value);
  }
  return query.toString();
}

function followCount(form) {
  const output = document.getElementById("recipient-count");
  let asked = 0;
  const update = async () => {
    const mine = ++asked;
    const response = await fetch(form.dataset.reach + "?" + audienceQuery(form), {credentials: "same-origin"});
    if (!response.ok || mine !== asked) return;
    const found = await response.json();
    output.textContent = found.count === null ? "?" : String(found.count);
  };
  form.addEventListener("change", (event) => {
    if (event.target.closest("#audience")) update();
  });
}

function followCounts(table) {
  const refresh = async () => {
    const response = await fetch(table.dataset.counts, {credentials: "same-origin"});
    if (!response.ok) return;
    const found = await response.json();
    for (const row of table.querySelectorAll("tr[data-id]")) {
      const counts = found[row.dataset.id];
      if (!counts) continue;
      for (const cell of row.querySelectorAll("td[data-count]")) {
        cell.textContent = String(counts[cell.dataset.count]);
      }
    }
  };
  setInterval(refresh, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("compose");
  if (form) followCount(form);
  const table = document.getElementById("broadcast-list");
  if (table) followCounts(table);
});
