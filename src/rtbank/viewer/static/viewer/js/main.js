// The plan viewer: state shared by the views, data loading, and the wiring of the controls.
// Plain ES modules, no build step. The server sends planes as raw uint16 and geometry as JSON (patient mm).

import { Api } from "./api.js";
import { drawDvh } from "./dvh.js";
import { indexThrough, planeAt } from "./geometry.js";
import { SliceView } from "./view.js";
import {
  buildIsodoseLegend, buildRoiList, buildSeriesChoice, buildWindowPresets, setText, syncRoiChecks,
} from "./controls.js";

const PREFETCH = 4; // neighbouring slices whose images are fetched ahead in the direction of travel
const PREFETCH_OVERLAYS = 2; // … and whose geometry and dose planes are
const DVH_POLLS = 240; // at most 4 minutes of polling at 1 s

class Viewer {
  constructor(root) {
    this.root = root;
    this.api = new Api(root.dataset.base, root.dataset.session);
    this.window = { width: 400, level: 40 };
    this.visibleRois = new Set();
    this.colours = new Map();
    this.showIsodose = true;
    this.showWash = false;
    this.showCrosshair = true;
    this.levelsGy = [];
    this.mode = "off"; // off | blend | side
    this.secondaryUid = "";
    this.opacity = 0.5;
    this.secondaryRanges = new Map();
    this.crosshair = null;
    this.direction = new Map();
    this.dvh = null;
    this.$ = (selector) => root.querySelector(selector);
  }

  async start() {
    const { body } = await this.api.json("manifest.json");
    this.manifest = body;
    for (const roi of body.rois) {
      this.colours.set(roi.number, roi.color);
      if (!roi.empty) this.visibleRois.add(roi.number);
    }
    const first = body.windows && body.windows["soft tissue"];
    if (first) this.window = { width: first.width, level: first.level };
    if (!body.primary) {
      // No images (yet): the structure list, dose facts and DVHs still help.
      this.root.dataset.mode = "none";
      this.views = {};
      this.buildControls();
      setText(this.$("#viewer-status"), body.problem);
      this.root.dataset.ready = "true";
      this.loadDvh();
      return;
    }
    this.views = {};
    for (const figure of this.root.querySelectorAll("figure.vw")) {
      const secondary = figure.dataset.secondary === "true";
      const view = new SliceView(figure, this, figure.dataset.view, { secondary });
      view.slider.max = String(view.count - 1);
      this.views[secondary ? "secondary" : view.view] = view;
    }
    this.buildControls();
    this.levelsGy = this.readLevels();
    const middle = (view) => Math.floor(view.count / 2);
    for (const name of ["axial", "sagittal", "coronal"]) {
      const v = this.views[name];
      v.index = middle(v);
      v.slider.value = String(v.index);
    }
    new ResizeObserver(() => Object.values(this.views).forEach((v) => v.resize())).observe(this.$(".views"));
    // The axial view first: its slice needs one file, the reconstructions need the whole volume.
    this.load(this.views.axial);
    this.root.dataset.ready = "true";
  }

  // ---------------------------------------------------------------- data
  imagePath(view) {
    const series = view.secondary ? this.secondaryUid : this.manifest.primary.uid;
    return `image/${series}/${view.view}/${view.index}`;
  }

  async load(view) {
    if (view.secondary && !this.secondaryUid) return;
    const token = (view.loadToken || 0) + 1;
    view.loadToken = token;
    const index = view.index;
    const plane = planeAt(this.manifest, view.view, index);
    this.caption(view, plane);
    const current = () => view.loadToken === token;
    const pending = { geometry: null, dose: null, blend: null, shown: false };
    const wants = this.requestsFor(view);
    const mark = (layers) => {
      if (layers.geometry) view.element.dataset.geometry = String(index);
      if (layers.dose) view.element.dataset.dose = String(index);
    };
    const apply = (layers) => {
      if (!current()) return;
      if (pending.shown) {
        view.setLayers(layers);
        mark(layers);
      } else Object.assign(pending, layers);
    };
    if (wants.geometry) this.geometry(view.view, index).then((g) => apply({ geometry: g }), (e) => this.problem(e));
    if (wants.dose) this.api.plane(`dose/${view.view}/${index}`).then((d) => apply({ dose: d }), (e) => this.problem(e));
    if (wants.blend) {
      this.api.plane(`image/${this.secondaryUid}/${view.view}/${index}`).then((b) => apply({ blend: b }),
        (e) => this.problem(e));
    }
    try {
      const image = await this.api.plane(this.imagePath(view));
      if (!current()) return;
      pending.shown = true;
      view.setLayers({ plane, image, geometry: pending.geometry, dose: pending.dose, blend: pending.blend,
        window: true });
      view.element.dataset.loaded = String(index);
      mark(pending);
      if (!this.started && view.view === "axial" && !view.secondary) {
        this.started = true; // then the reconstructions, and the DVHs (seconds to calculate)
        for (const name of ["sagittal", "coronal"]) if (!this.views[name].plane) this.load(this.views[name]);
        setTimeout(() => this.loadDvh(), 300);
      }
    } catch (error) {
      this.problem(error);
    }
    this.prefetch(view);
  }

  requestsFor(view) {
    const hasGeometry = this.manifest.rois.length > 0 || this.manifest.dose.available;
    return {
      geometry: hasGeometry,
      dose: this.manifest.dose.available,
      blend: !view.secondary && this.mode === "blend" && Boolean(this.secondaryUid),
    };
  }

  geometry(view, index) {
    const params = { levels: this.levelsGy.map((g) => g.toFixed(4)).join(",") };
    const key = `geometry/${view}/${index}?${params.levels}`;
    this.geometries = this.geometries || new Map();
    if (!this.geometries.has(key)) {
      const promise = this.api.json(`geometry/${view}/${index}`, params).then((r) => r.body);
      promise.catch(() => this.geometries.delete(key));
      this.geometries.set(key, promise);
      if (this.geometries.size > 300) this.geometries.delete(this.geometries.keys().next().value);
    }
    return this.geometries.get(key);
  }

  // Fetch ahead in the direction of travel: images further, geometry and dose for the next slices.
  prefetch(view) {
    const direction = this.direction.get(view.view) || 1;
    const wants = this.requestsFor(view);
    for (let n = 1; n <= PREFETCH; n += 1) {
      const index = view.index + direction * n;
      if (index < 0 || index >= view.count) break;
      const series = view.secondary ? this.secondaryUid : this.manifest.primary.uid;
      this.api.plane(`image/${series}/${view.view}/${index}`).catch(() => {});
      if (n <= PREFETCH_OVERLAYS && !view.secondary) {
        if (wants.geometry) this.geometry(view.view, index).catch(() => {});
        if (wants.dose) this.api.plane(`dose/${view.view}/${index}`).catch(() => {});
      }
    }
  }

  problem(error) {
    if (error && error.name === "AbortError") return;
    setText(this.$("#viewer-status"), `Problem: ${error.message || error}`);
  }

  // ---------------------------------------------------------------- navigation
  step(view, delta) {
    this.direction.set(view.view, delta > 0 ? 1 : -1);
    this.go(view, view.index + delta);
  }

  go(view, index) {
    view.setIndex(index);
    if (this.mode === "side" && view.view === "axial") {
      const other = view.secondary ? this.views.axial : this.views.secondary;
      if (other && other !== view) other.setIndex(index);
    }
  }

  centreOn(view, point) {
    if (!point) return;
    this.crosshair = point;
    for (const name of ["axial", "sagittal", "coronal"]) {
      if (name !== view.view) this.go(this.views[name], indexThrough(this.manifest, name, point));
    }
    Object.values(this.views).forEach((v) => v.draw());
  }

  zoomed(view) {
    if (this.mode === "side" && view.view === "axial") {
      const other = view.secondary ? this.views.axial : this.views.secondary;
      other.zoom = view.zoom;
      other.pan = { ...view.pan };
      other.draw();
    }
    view.draw();
  }

  caption(view, plane) {
    const label = view.secondary ? "Registered" : view.view[0].toUpperCase() + view.view.slice(1);
    setText(view.caption, `${label} ${view.index + 1}/${view.count} · ${plane.fixed.axis} = ${plane.fixed.mm.toFixed(1)} mm`);
  }

  // ---------------------------------------------------------------- display state
  setWindow(w) {
    this.window = { width: Math.round(w.width), level: Math.round(w.level) };
    setText(this.$("#window-readout"), `W ${this.window.width} / L ${this.window.level}`);
    for (const name of ["axial", "sagittal", "coronal"]) this.views[name].setLayers({ window: true });
  }

  autoWindow() {
    const image = this.views.axial.image;
    if (!image) return;
    const [lo, hi] = image.percentiles();
    this.setWindow({ width: Math.max(1, hi - lo), level: (hi + lo) / 2 });
  }

  secondaryRange(plane) {
    if (!this.secondaryRanges.has(this.secondaryUid)) this.secondaryRanges.set(this.secondaryUid, plane.percentiles());
    return this.secondaryRanges.get(this.secondaryUid);
  }

  secondaryWindow(plane) {
    const [lo, hi] = plane ? this.secondaryRange(plane) : [0, 1];
    return { width: hi - lo, level: (hi + lo) / 2 };
  }

  blendColormap() {
    const other = this.manifest.others.find((s) => s.uid === this.secondaryUid);
    return other && other.modality === "PT" ? "hot" : "green";
  }

  washRange() {
    const low = this.levelsGy.length ? Math.min(...this.levelsGy) : 0.1 * (this.manifest.dose.max_gy || 1);
    return [low, Math.max(low + 1e-6, this.manifest.dose.max_gy || low + 1)];
  }

  roiColour(number) {
    return this.colours.get(number) || "#ffff00";
  }

  toggleRoi(number, on) {
    if (on) this.visibleRois.add(number);
    else this.visibleRois.delete(number);
    this.redraw();
  }

  setAllRois(on) {
    this.visibleRois = new Set(on ? this.manifest.rois.filter((r) => !r.empty).map((r) => r.number) : []);
    syncRoiChecks(this.$("#roi-list"), this);
    this.redraw();
  }

  redraw() {
    Object.values(this.views).forEach((v) => v.draw());
    this.drawDvh();
  }

  reloadAll() {
    Object.values(this.views).forEach((v) => this.load(v));
  }

  readLevels() {
    const dose = this.manifest.dose;
    const unit = this.$("#isodose-unit").value;
    const reference = dose.prescription_gy || dose.max_gy || 0;
    const numbers = this.$("#isodose-levels").value.split(/[,;\s]+/).map(Number).filter((n) => n > 0);
    const levels = unit === "percent" ? numbers.map((p) => (p / 100) * reference) : numbers;
    const unique = [...new Set(levels.map((g) => +g.toFixed(4)))].filter((g) => g > 0).sort((a, b) => b - a);
    buildIsodoseLegend(this.$("#isodose-legend"), unique, dose.prescription_gy);
    return unique.slice(0, 16);
  }

  showCursor(view, point) {
    if (!point) {
      setText(this.$("#cursor"), "");
      return;
    }
    const value = view.image ? view.image.valueAt(point.row, point.column) : null;
    const dose = view.dose ? view.dose.valueAt(point.row, point.column) : null;
    const units = view.secondary ? "" : this.manifest.primary.modality === "CT" ? " HU" : "";
    const parts = [`x ${point.x.toFixed(1)}  y ${point.y.toFixed(1)}  z ${point.z.toFixed(1)} mm`];
    parts.push(value === null ? "—" : `${value.toFixed(value % 1 ? 1 : 0)}${units}`);
    if (this.manifest.dose.available) parts.push(dose === null ? "dose —" : `dose ${dose.toFixed(2)} Gy`);
    setText(this.$("#cursor"), parts.join(" · "));
  }

  // ---------------------------------------------------------------- registered images
  setSecondary(uid, mode) {
    this.secondaryUid = uid;
    this.mode = uid ? mode : "off";
    this.root.dataset.mode = this.mode;
    const secondary = this.views.secondary;
    if (this.mode === "side") {
      secondary.index = this.views.axial.index;
      secondary.zoom = this.views.axial.zoom;
      secondary.pan = { ...this.views.axial.pan };
      secondary.image = null;
      requestAnimationFrame(() => { secondary.resize(); this.load(secondary); });
    }
    for (const name of ["axial", "sagittal", "coronal"]) this.views[name].blend = null;
    this.reloadAll();
  }

  // ---------------------------------------------------------------- DVH
  async loadDvh() {
    const status = this.$("#dvh-status");
    for (let attempt = 0; attempt < DVH_POLLS; attempt += 1) {
      let reply;
      try {
        reply = await this.api.json("dvh.json");
      } catch (error) {
        setText(status, `DVH: ${error.message}`);
        return;
      }
      const panel = reply.body;
      if (panel.status === "computing") {
        setText(status, "Calculating DVHs…");
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (panel.status !== "ok") {
        setText(status, panel.reason || "No DVH for this dataset.");
        return;
      }
      this.dvh = panel;
      setText(status, panel.source === "stored" ? "Stored DVHs" : "DVHs calculated for this view");
      this.root.dataset.dvh = "ready";
      this.drawDvh();
      return;
    }
    setText(status, "DVHs are taking too long; reload the page later.");
  }

  drawDvh() {
    if (!this.dvh) return;
    drawDvh(this.$("#dvh-plot"), this.dvh.rois, {
      colour: (n) => this.roiColour(n), visible: this.visibleRois, prescriptionGy: this.manifest.dose.prescription_gy,
    });
  }

  // ---------------------------------------------------------------- controls
  buildControls() {
    const m = this.manifest;
    buildWindowPresets(this.$("#window-presets"), this);
    setText(this.$("#window-readout"), `W ${this.window.width} / L ${this.window.level}`);
    buildRoiList(this.$("#roi-list"), this);
    this.$("#rois-all").addEventListener("click", () => this.setAllRois(true));
    this.$("#rois-none").addEventListener("click", () => this.setAllRois(false));
    const dose = m.dose;
    this.$("#dose-panel").hidden = !dose.available;
    setText(this.$("#dose-info"), dose.available
      ? `max ${dose.max_gy.toFixed(2)} Gy${dose.prescription_gy ? ` · prescription ${dose.prescription_gy} Gy` : ""}`
      : dose.error || "no dose");
    if (!dose.prescription_gy) this.$("#isodose-unit").value = "percent";
    this.$("#isodose-levels").value = m.isodose_percent.join(", ");
    const toggleIsodose = this.$("#isodose-on");
    toggleIsodose.addEventListener("change", () => { this.showIsodose = toggleIsodose.checked; this.redraw(); });
    const wash = this.$("#wash-on");
    wash.addEventListener("change", () => {
      this.showWash = wash.checked;
      Object.values(this.views).forEach((v) => v.setLayers({ dose: v.dose }));
    });
    const applyLevels = () => { this.levelsGy = this.readLevels(); this.reloadAll(); };
    this.$("#isodose-levels").addEventListener("change", applyLevels);
    this.$("#isodose-unit").addEventListener("change", applyLevels);
    const select = this.$("#secondary-series");
    buildSeriesChoice(select, this);
    this.$("#secondary-panel").hidden = !m.others.length;
    const modeOf = () => this.root.querySelector("input[name=secondary-mode]:checked").value;
    select.addEventListener("change", () => this.setSecondary(select.value, modeOf()));
    for (const radio of this.root.querySelectorAll("input[name=secondary-mode]")) {
      radio.addEventListener("change", () => this.setSecondary(select.value, modeOf()));
    }
    const opacity = this.$("#secondary-opacity");
    opacity.addEventListener("input", () => { this.opacity = Number(opacity.value) / 100; this.redraw(); });
    const notes = [...((m.primary && m.primary.notes) || []), ...(dose.error && dose.available ? [dose.error] : [])];
    setText(this.$("#viewer-status"), notes.join(" "));
  }
}

const root = document.getElementById("viewer");
if (root) {
  const viewer = new Viewer(root);
  window.rtbankViewer = viewer; // for the browser tests and the console
  viewer.start().catch((error) => {
    root.dataset.ready = "error";
    setText(document.getElementById("viewer-status"), `The viewer could not start: ${error.message}`);
  });
}
