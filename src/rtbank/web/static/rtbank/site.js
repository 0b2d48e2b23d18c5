// Small progressive enhancements; every page works without this file.
// Colour swatches: ROI colours travel as data attributes because the CSP forbids inline styles.
document.querySelectorAll("[data-color]").forEach((el) => {
  const c = el.getAttribute("data-color");
  if (/^#[0-9a-f]{6}$/i.test(c)) el.style.backgroundColor = c;
});

// "Select all" boxes: <input type="checkbox" data-select-all="NAME"> toggles every checkbox name=NAME in its form.
document.querySelectorAll("[data-select-all]").forEach((box) => {
  box.addEventListener("change", () => {
    const form = box.closest("form") || document;
    form.querySelectorAll(`input[type=checkbox][name="${box.getAttribute("data-select-all")}"]`).forEach((el) => {
      el.checked = box.checked;
    });
  });
});
