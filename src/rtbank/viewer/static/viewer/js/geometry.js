// Display planes in the browser: the same definitions as rtbank.dicom.imaging.planes. A plane's pixel
// (column, row) has its centre at u = u.start + column * u.step, v = v.start + row * v.step (patient mm);
// the fixed coordinate depends on the plane index.

const FIXED = { axial: "z", coronal: "y", sagittal: "x" };

export function planeAt(manifest, view, index) {
  const base = manifest.views[view].plane;
  const primary = manifest.primary;
  let fixed;
  if (view === "axial") fixed = primary.z_mm[index];
  else if (view === "coronal") fixed = primary.y.start_mm + index * primary.y.step_mm;
  else fixed = primary.x.start_mm + index * primary.x.step_mm;
  return { view, index, fixed: { axis: FIXED[view], mm: fixed }, u: base.u, v: base.v };
}

// Patient point {x, y, z} of a fractional plane pixel (column, row; pixel centres at integers).
export function pixelToPatient(plane, column, row) {
  const point = { x: 0, y: 0, z: 0 };
  point[plane.fixed.axis] = plane.fixed.mm;
  point[plane.u.axis] = plane.u.start_mm + column * plane.u.step_mm;
  point[plane.v.axis] = plane.v.start_mm + row * plane.v.step_mm;
  return point;
}

// The plane index of another view that passes through a patient point (nearest node).
export function indexThrough(manifest, view, point) {
  const p = manifest.primary;
  if (view === "axial") {
    let best = 0;
    p.z_mm.forEach((z, k) => { if (Math.abs(z - point.z) < Math.abs(p.z_mm[best] - point.z)) best = k; });
    return best;
  }
  const axis = view === "coronal" ? p.y : p.x;
  const value = view === "coronal" ? point.y : point.x;
  return Math.min(axis.count - 1, Math.max(0, Math.round((value - axis.start_mm) / axis.step_mm)));
}

// Edge labels: what lies at the left, right, top and bottom of a view (radiological convention).
export const ORIENTATION = {
  axial: ["R", "L", "A", "P"],
  coronal: ["R", "L", "S", "I"],
  sagittal: ["A", "P", "S", "I"],
};
