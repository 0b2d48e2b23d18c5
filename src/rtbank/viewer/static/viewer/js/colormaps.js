// Colour tables (256 RGB entries) for blended images and the dose wash.

function table(stops) {
  const out = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i += 1) {
    const t = i / 255;
    let k = 0;
    while (k < stops.length - 2 && t > stops[k + 1][0]) k += 1;
    const [t0, c0] = stops[k];
    const [t1, c1] = stops[k + 1];
    const f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    for (let ch = 0; ch < 3; ch += 1) out[i * 3 + ch] = c0[ch] + f * (c1[ch] - c0[ch]);
  }
  return out;
}

export const COLORMAPS = {
  grey: table([[0, [0, 0, 0]], [1, [255, 255, 255]]]),
  hot: table([[0, [0, 0, 0]], [0.4, [230, 0, 0]], [0.8, [255, 210, 0]], [1, [255, 255, 255]]]),
  green: table([[0, [0, 0, 0]], [1, [60, 255, 90]]]),
  // dose wash: blue (low) → cyan → green → yellow → red (high)
  dose: table([[0, [0, 0, 255]], [0.25, [0, 200, 255]], [0.5, [0, 220, 0]], [0.75, [255, 230, 0]], [1, [255, 0, 0]]]),
};

// Isodose line colours by rank (highest level first), as TPSs commonly draw them.
export const ISODOSE_COLOURS = ["#ff00ff", "#ff0000", "#ff8c00", "#ffff00", "#00ff00", "#00ffff", "#1e90ff",
  "#0000ff", "#9370db", "#ffffff"];
