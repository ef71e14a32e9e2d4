/* The console's own script (no inline script: the CSP forbids it). Three jobs:
 * confirmations before a form with data-confirm is sent, "tick all" buttons, and the charts. */
"use strict";

// Before htmx or the browser sends a form marked data-confirm: ask. Capture phase, so the
// question comes before htmx's own submit listener on the form.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-tick-all]") : null;
  if (!button) return;
  const boxes = document.querySelectorAll(`input[type=checkbox][name="${button.dataset.tickAll}"]`);
  const tick = Array.from(boxes).some((box) => !box.checked);
  boxes.forEach((box) => { box.checked = tick; });
});

// A button inside a form marked data-confirm on the button itself (approve several, replay).
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-confirm]") : null;
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

const PALETTE = ["#2855c5", "#b3261e", "#1f7a3a", "#8a5a00", "#6b3fa0", "#00838f", "#5b6472"];

function drawCharts(root, figures) {
  const hours = figures.hours.map((iso) => Date.parse(iso) / 1000);
  root.querySelectorAll("[data-chart]").forEach((box) => {
    const field = box.dataset.chart;
    const series = [{}].concat(figures.types.map((type, i) => ({
      label: type.job_type,
      stroke: PALETTE[i % PALETTE.length],
      width: 1.5,
      spanGaps: field === "mean_s",
      value: (_u, v) => (v == null ? "–" : `${v} ${box.dataset.unit}`),
    })));
    const data = [hours].concat(figures.types.map((type) => type[field]));
    box.replaceChildren();
    if (!figures.types.length) {
      box.textContent = "Nothing counted in this span yet.";
      return;
    }
    // eslint-disable-next-line no-new
    new window.uPlot({ width: Math.max(320, box.clientWidth - 16), height: 220, series,
      scales: { x: { time: true } }, axes: [{}, { label: box.dataset.unit }] }, data, box);
  });
}

async function loadCharts(root) {
  const note = document.getElementById("charts-note");
  try {
    const response = await fetch(root.dataset.source, { credentials: "same-origin",
      headers: { Accept: "application/json", "X-Console-Poll": "1" } });
    if (!response.ok) throw new Error(`the figures answered ${response.status}`);
    drawCharts(root, await response.json());
    note.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (error) {
    note.textContent = `Could not load the figures: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("charts");
  if (!root || !window.uPlot) return;
  loadCharts(root);
  window.setInterval(() => loadCharts(root), Number(root.dataset.refreshS || 60) * 1000);
});
