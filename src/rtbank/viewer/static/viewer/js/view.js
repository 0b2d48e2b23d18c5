// One view (axial, sagittal or coronal) on a canvas: the image with window/level, an optional blended or
// side-by-side registered image, the dose wash, ROI contours and isodose lines, zoom and pan.
//
// Coordinates: plane pixel (column, row) has its centre at (column + 0.5, row + 0.5) in image space, where
// the image covers [0, columns] × [0, rows]; image space maps to the canvas by a scale per axis (the pixel
// spacing can differ between u and v) and an offset (pan). Contours and isodose lines arrive as (u, v) mm.

import { COLORMAPS, ISODOSE_COLOURS } from "./colormaps.js";
import { ORIENTATION, pixelToPatient } from "./geometry.js";

export class SliceView {
  constructor(element, viewer, view, options = {}) {
    this.element = element;
    this.viewer = viewer; // the shared state and data loader (main.js)
    this.view = view;
    this.secondary = Boolean(options.secondary); // shows the registered series instead of the primary
    this.canvas = element.querySelector("canvas");
    this.caption = element.querySelector(".caption");
    this.slider = element.querySelector("input[type=range]");
    this.ctx = this.canvas.getContext("2d");
    this.index = 0;
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
    this.plane = null;
    this.image = null; // Plane of the shown series
    this.blend = null; // Plane of the registered series (blend mode)
    this.dose = null; // Plane of dose values (Gy)
    this.geometry = null; // contours and isodose lines
    this.imageCanvas = document.createElement("canvas");
    this.blendCanvas = document.createElement("canvas");
    this.doseCanvas = document.createElement("canvas");
    this.cursor = null;
    this.bind();
  }

  get count() {
    return this.viewer.manifest.views[this.view].count;
  }

  setIndex(index, { force = false } = {}) {
    const clamped = Math.max(0, Math.min(this.count - 1, Math.round(index)));
    if (clamped === this.index && this.plane && !force) return;
    this.index = clamped;
    if (this.slider) this.slider.value = String(clamped);
    this.viewer.load(this);
  }

  // ---------------------------------------------------------------- drawing
  // layers: any of plane, image, blend, dose, geometry; `window: true` re-renders the image only.
  setLayers(layers) {
    const { window: rewindow, ...rest } = layers;
    Object.assign(this, rest);
    if ("image" in rest || rewindow) this.renderImage();
    if ("blend" in rest) this.renderBlend();
    if ("dose" in rest) this.renderDose();
    this.draw();
  }

  renderImage() {
    const plane = this.image;
    if (!plane) return;
    const w = this.windowFor();
    paint(this.imageCanvas, plane, COLORMAPS.grey, w.level - w.width / 2, w.level + w.width / 2, 255);
  }

  renderBlend() {
    const plane = this.blend;
    if (!plane) return;
    const [lo, hi] = this.viewer.secondaryRange(plane);
    // Fusion look: the brighter the registered image, the more it shows (dark background stays clear).
    paint(this.blendCanvas, plane, COLORMAPS[this.viewer.blendColormap()], lo, hi, 255, -Infinity, true);
  }

  renderDose() {
    const plane = this.dose;
    if (!plane || !plane.rows) return;
    const [lo, hi] = this.viewer.washRange();
    paint(this.doseCanvas, plane, COLORMAPS.dose, lo, hi, 110, lo);
  }

  windowFor() {
    return this.secondary ? this.viewer.secondaryWindow(this.image) : this.viewer.window;
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    const width = Math.max(1, Math.round(rect.width * ratio));
    const height = Math.max(1, Math.round(rect.height * ratio));
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    this.draw();
  }

  // image space → canvas device pixels
  transform() {
    const p = this.plane;
    const widthMm = p.u.count * Math.abs(p.u.step_mm);
    const heightMm = p.v.count * Math.abs(p.v.step_mm);
    const fit = Math.min(this.canvas.width / widthMm, this.canvas.height / heightMm);
    const perMm = fit * this.zoom;
    const sx = perMm * Math.abs(p.u.step_mm);
    const sy = perMm * Math.abs(p.v.step_mm);
    const ox = (this.canvas.width - p.u.count * sx) / 2 + this.pan.x;
    const oy = (this.canvas.height - p.v.count * sy) / 2 + this.pan.y;
    return { sx, sy, ox, oy };
  }

  mmToCanvas(u, v, t) {
    const p = this.plane;
    const column = (u - p.u.start_mm) / p.u.step_mm + 0.5;
    const row = (v - p.v.start_mm) / p.v.step_mm + 0.5;
    return [t.ox + column * t.sx, t.oy + row * t.sy];
  }

  canvasToPixel(x, y) {
    const t = this.transform();
    return [(x - t.ox) / t.sx - 0.5, (y - t.oy) / t.sy - 0.5];
  }

  draw() {
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.plane || !this.image) return;
    const t = this.transform();
    const p = this.plane;
    ctx.imageSmoothingEnabled = this.zoom < 4;
    ctx.drawImage(this.imageCanvas, t.ox, t.oy, p.u.count * t.sx, p.v.count * t.sy);
    if (this.blend && this.viewer.mode === "blend" && !this.secondary) {
      ctx.globalAlpha = this.viewer.opacity;
      ctx.drawImage(this.blendCanvas, t.ox, t.oy, p.u.count * t.sx, p.v.count * t.sy);
      ctx.globalAlpha = 1;
    }
    if (this.dose && this.dose.rows && this.viewer.showWash) {
      ctx.drawImage(this.doseCanvas, t.ox + this.dose.column0 * t.sx, t.oy + this.dose.row0 * t.sy,
        this.dose.columns * t.sx, this.dose.rows * t.sy);
    }
    if (this.geometry) {
      // Contours last: where a target and its covering isodose line coincide, the target stays visible.
      if (this.viewer.showIsodose) this.drawIsodose(t);
      this.drawContours(t);
    }
    this.drawCrosshair(t);
    this.drawLabels();
  }

  drawContours(t) {
    const ctx = this.ctx;
    const ratio = window.devicePixelRatio || 1;
    ctx.lineWidth = 1.5 * ratio;
    for (const roi of this.geometry.rois) {
      if (!this.viewer.visibleRois.has(roi.number)) continue;
      ctx.strokeStyle = this.viewer.roiColour(roi.number);
      this.strokeLines(roi.lines, t);
    }
  }

  drawIsodose(t) {
    const ctx = this.ctx;
    const ratio = window.devicePixelRatio || 1;
    ctx.lineWidth = 1.5 * ratio;
    ctx.setLineDash([]);
    this.geometry.isodose.forEach((level, rank) => {
      ctx.strokeStyle = ISODOSE_COLOURS[rank % ISODOSE_COLOURS.length];
      this.strokeLines(level.lines, t);
    });
  }

  strokeLines(lines, t) {
    const ctx = this.ctx;
    ctx.beginPath();
    for (const flat of lines) {
      for (let n = 0; n < flat.length; n += 2) {
        const [x, y] = this.mmToCanvas(flat[n], flat[n + 1], t);
        if (n === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
    }
    ctx.stroke();
  }

  drawCrosshair(t) {
    const point = this.viewer.crosshair;
    if (!point || !this.viewer.showCrosshair) return;
    const p = this.plane;
    const [x, y] = this.mmToCanvas(point[p.u.axis], point[p.v.axis], t);
    const ctx = this.ctx;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.35)";
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(x, 0); ctx.lineTo(x, this.canvas.height);
    ctx.moveTo(0, y); ctx.lineTo(this.canvas.width, y);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  drawLabels() {
    const ctx = this.ctx;
    const ratio = window.devicePixelRatio || 1;
    const [left, right, top, bottom] = ORIENTATION[this.view];
    ctx.fillStyle = "#ffd24d";
    ctx.font = `${12 * ratio}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    ctx.fillText(left, 4 * ratio, this.canvas.height / 2);
    ctx.textAlign = "right";
    ctx.fillText(right, this.canvas.width - 4 * ratio, this.canvas.height / 2);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText(top, this.canvas.width / 2, 4 * ratio);
    ctx.textBaseline = "bottom";
    ctx.fillText(bottom, this.canvas.width / 2, this.canvas.height - 4 * ratio);
  }

  // ---------------------------------------------------------------- interaction
  bind() {
    const canvas = this.canvas;
    canvas.tabIndex = 0;
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      if (event.ctrlKey || event.metaKey) this.zoomAt(event, event.deltaY < 0 ? 1.15 : 1 / 1.15);
      else this.viewer.step(this, event.deltaY > 0 ? -1 : 1);
    }, { passive: false });
    canvas.addEventListener("keydown", (event) => this.key(event));
    canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    canvas.addEventListener("pointerleave", () => this.viewer.showCursor(this, null));
    canvas.addEventListener("dblclick", (event) => this.viewer.centreOn(this, this.patientAt(event)));
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    if (this.slider) {
      this.slider.addEventListener("input", () => this.viewer.go(this, Number(this.slider.value)));
    }
  }

  key(event) {
    const steps = { ArrowUp: 1, ArrowRight: 1, PageUp: 5, ArrowDown: -1, ArrowLeft: -1, PageDown: -5 };
    if (event.key in steps) this.viewer.step(this, steps[event.key]);
    else if (event.key === "Home") this.viewer.go(this, 0);
    else if (event.key === "End") this.viewer.go(this, this.count - 1);
    else if (event.key === "+" || event.key === "=") this.setZoom(this.zoom * 1.25);
    else if (event.key === "-") this.setZoom(this.zoom / 1.25);
    else if (event.key === "r" || event.key === "0") { this.zoom = 1; this.pan = { x: 0, y: 0 }; this.viewer.zoomed(this); }
    else return;
    event.preventDefault();
  }

  setZoom(zoom) {
    this.zoom = Math.min(16, Math.max(0.5, zoom));
    this.viewer.zoomed(this);
  }

  zoomAt(event, factor) {
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * ratio;
    const y = (event.clientY - rect.top) * ratio;
    const before = this.zoom;
    this.zoom = Math.min(16, Math.max(0.5, this.zoom * factor));
    const k = this.zoom / before;
    // keep the point under the cursor in place
    const cx = this.canvas.width / 2;
    const cy = this.canvas.height / 2;
    this.pan.x = (x - cx) - k * (x - cx - this.pan.x);
    this.pan.y = (y - cy) - k * (y - cy - this.pan.y);
    this.viewer.zoomed(this);
  }

  pointerDown(event) {
    this.canvas.focus();
    this.canvas.setPointerCapture(event.pointerId);
    const panning = event.button === 1 || event.button === 2 || event.shiftKey;
    const start = { x: event.clientX, y: event.clientY, pan: { ...this.pan }, window: { ...this.windowFor() } };
    const move = (e) => {
      const ratio = window.devicePixelRatio || 1;
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (panning) {
        this.pan = { x: start.pan.x + dx * ratio, y: start.pan.y + dy * ratio };
        this.viewer.zoomed(this);
      } else if (!this.secondary) {
        // drag right: wider window; drag down: higher level (darker image)
        const scale = Math.max(1, start.window.width / 256);
        this.viewer.setWindow({ width: Math.max(1, start.window.width + dx * scale),
          level: start.window.level + dy * scale });
      }
    };
    const up = () => {
      this.canvas.removeEventListener("pointermove", move);
      this.canvas.removeEventListener("pointerup", up);
      this.canvas.removeEventListener("pointercancel", up);
    };
    this.canvas.addEventListener("pointermove", move);
    this.canvas.addEventListener("pointerup", up);
    this.canvas.addEventListener("pointercancel", up);
  }

  patientAt(event) {
    if (!this.plane) return null;
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    const [column, row] = this.canvasToPixel((event.clientX - rect.left) * ratio, (event.clientY - rect.top) * ratio);
    if (column < -0.5 || row < -0.5 || column > this.plane.u.count - 0.5 || row > this.plane.v.count - 0.5) return null;
    return { ...pixelToPatient(this.plane, column, row), column: Math.round(column), row: Math.round(row) };
  }

  pointerMove(event) {
    this.viewer.showCursor(this, this.patientAt(event));
  }
}

// Values of a plane through a colour table into an offscreen canvas: transparent where there is no data and,
// for the dose wash, below `floor`; with `ramp` the opacity follows the value (fused images).
function paint(canvas, plane, lut, lo, hi, alpha, floor = -Infinity, ramp = false) {
  canvas.width = plane.columns;
  canvas.height = plane.rows;
  const ctx = canvas.getContext("2d");
  const data = ctx.createImageData(plane.columns, plane.rows);
  const px = data.data;
  const span = hi > lo ? hi - lo : 1;
  const { raw, scale, offset } = plane;
  for (let n = 0; n < raw.length; n += 1) {
    const r = raw[n];
    if (r === 0) continue;
    const value = offset + scale * r;
    if (value < floor) continue;
    let i = Math.round(((value - lo) / span) * 255);
    i = i < 0 ? 0 : i > 255 ? 255 : i;
    const o = n * 4;
    px[o] = lut[i * 3];
    px[o + 1] = lut[i * 3 + 1];
    px[o + 2] = lut[i * 3 + 2];
    px[o + 3] = ramp ? i : alpha;
  }
  ctx.putImageData(data, 0, 0);
}
