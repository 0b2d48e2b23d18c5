// Small progressive enhancements; every page works without this file.
// Colour swatches: ROI colours travel as data attributes because the CSP forbids inline styles.
document.querySelectorAll("[data-color]").forEach((el) => {
  const c = el.getAttribute("data-color");
  if (/^#[0-9a-f]{6}$/i.test(c)) el.style.backgroundColor = c;
});
