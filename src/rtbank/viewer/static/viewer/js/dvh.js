// The DVH panel: cumulative DVHs (volume % against dose) of the visible ROIs, in their colours.

export function drawDvh(canvas, rois, { colour, visible, prescriptionGy }) {
  const ratio = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(rect.width * ratio));
  canvas.height = Math.max(1, Math.round(rect.height * ratio));
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const width = rect.width;
  const height = rect.height;
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, width, height);
  const shown = rois.filter((r) => visible.has(r.number) && r.cumulative_cc.length > 1 && r.cumulative_cc[0] > 0);
  let top = 0;
  for (const r of shown) top = Math.max(top, (r.cumulative_cc.length - 1) * r.step_gy);
  if (prescriptionGy) top = Math.max(top, prescriptionGy * 1.1);
  top = niceCeil(top || 1);
  const box = { left: 38, right: width - 8, top: 8, bottom: height - 24 };
  const x = (dose) => box.left + (dose / top) * (box.right - box.left);
  const y = (percent) => box.bottom - (percent / 100) * (box.bottom - box.top);
  ctx.strokeStyle = "#444";
  ctx.fillStyle = "#aaa";
  ctx.lineWidth = 1;
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let p = 0; p <= 100; p += 25) {
    ctx.beginPath(); ctx.moveTo(box.left, y(p)); ctx.lineTo(box.right, y(p)); ctx.stroke();
    ctx.fillText(`${p}%`, box.left - 4, y(p));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = top / 5;
  for (let d = 0; d <= top + 1e-9; d += step) {
    ctx.beginPath(); ctx.moveTo(x(d), box.top); ctx.lineTo(x(d), box.bottom); ctx.stroke();
    ctx.fillText(`${+d.toFixed(1)}`, x(d), box.bottom + 4);
  }
  ctx.fillText("Gy", box.right - 8, box.bottom + 12);
  ctx.lineWidth = 1.5;
  for (const r of shown) {
    const total = r.cumulative_cc[0];
    ctx.strokeStyle = colour(r.number);
    ctx.beginPath();
    r.cumulative_cc.forEach((cc, k) => {
      const px = x(k * r.step_gy);
      const py = y((100 * cc) / total);
      if (k === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke();
  }
  return shown.length;
}

function niceCeil(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * power) return m * power;
  return 10 * power;
}
