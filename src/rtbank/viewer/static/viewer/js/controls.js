// The control panel beside the views. Names from DICOM (ROI, series, plan) go in as text, never as HTML.

import { ISODOSE_COLOURS } from "./colormaps.js";

function el(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

export function buildWindowPresets(container, viewer) {
  container.replaceChildren();
  const presets = Object.entries(viewer.manifest.windows);
  const auto = el("button", { type: "button", "data-preset": "auto" }, "auto");
  auto.addEventListener("click", () => viewer.autoWindow());
  for (const [name, w] of presets) {
    const button = el("button", { type: "button", "data-preset": name }, name);
    button.addEventListener("click", () => viewer.setWindow({ width: w.width, level: w.level }));
    container.append(button);
  }
  container.append(auto);
}

export function buildRoiList(container, viewer) {
  container.replaceChildren();
  for (const roi of viewer.manifest.rois) {
    const id = `roi-${roi.number}`;
    const row = el("li", { class: roi.empty ? "roi empty" : "roi" });
    const box = el("input", { type: "checkbox", id, "data-roi": String(roi.number) });
    box.checked = viewer.visibleRois.has(roi.number);
    box.disabled = roi.empty;
    box.addEventListener("change", () => viewer.toggleRoi(roi.number, box.checked));
    const swatch = el("span", { class: "swatch" });
    swatch.style.backgroundColor = viewer.roiColour(roi.number);
    const label = el("label", { for: id });
    label.append(swatch, document.createTextNode(roi.name || `ROI ${roi.number}`));
    if (roi.standard && roi.standard !== roi.name) {
      label.append(el("span", { class: "standard" }, ` (${roi.standard})`));
    }
    if (roi.empty) label.append(el("span", { class: "note" }, " empty"));
    row.append(box, label);
    container.append(row);
  }
}

export function syncRoiChecks(container, viewer) {
  for (const box of container.querySelectorAll("input[data-roi]")) {
    box.checked = viewer.visibleRois.has(Number(box.dataset.roi));
  }
}

export function buildIsodoseLegend(container, levelsGy, prescriptionGy) {
  container.replaceChildren();
  levelsGy.forEach((gy, rank) => {
    const item = el("li");
    const swatch = el("span", { class: "swatch" });
    swatch.style.backgroundColor = ISODOSE_COLOURS[rank % ISODOSE_COLOURS.length];
    const percent = prescriptionGy ? ` · ${((100 * gy) / prescriptionGy).toFixed(0)}%` : "";
    item.append(swatch, document.createTextNode(`${+gy.toFixed(2)} Gy${percent}`));
    container.append(item);
  });
}

export function buildSeriesChoice(select, viewer) {
  select.replaceChildren(el("option", { value: "" }, "none"));
  for (const s of viewer.manifest.others) {
    const how = s.same_frame ? "same frame" : s.registered ? "registered" : "no registration";
    const option = el("option", { value: s.uid }, `${s.modality} ${s.description || ""} (${s.slices} images, ${how})`);
    option.disabled = !s.registered;
    select.append(option);
  }
}

export function setText(node, text) {
  if (node) node.textContent = text;
}
