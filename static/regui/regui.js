// RegUI page behaviour: theme toggle, copy buttons, tooltips, htmx-loaded dialogs, charts.
(function () {
  "use strict";

  function currentTheme() {
    return document.documentElement.getAttribute("data-bs-theme") || "light";
  }

  function applyTheme(theme) {
    document.documentElement.setAttribute("data-bs-theme", theme);
    try { localStorage.setItem("regui-theme", theme); } catch (e) { /* storage disabled */ }
    document.querySelectorAll("[data-theme-icon]").forEach(function (icon) {
      icon.className = theme === "dark" ? "bi bi-sun" : "bi bi-moon-stars";
    });
    document.dispatchEvent(new CustomEvent("regui:theme", { detail: theme }));
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      applyTheme(currentTheme() === "dark" ? "light" : "dark");
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      event.preventDefault();
      copyText(copy.getAttribute("data-copy"), copy);
    }
  });

  // "/" jumps to the page's search box, as on most code and registry sites.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var active = document.activeElement;
    if (active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName))) return;
    var search = document.querySelector('main input[type="search"]');
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });

  function copyText(text, button) {
    var done = function () {
      var icon = button.querySelector("i");
      var before = icon ? icon.className : "";
      if (icon) icon.className = "bi bi-check2 text-success";
      button.setAttribute("data-copied", "true");
      setTimeout(function () {
        if (icon) icon.className = before;
        button.removeAttribute("data-copied");
      }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  // Plain-http deployments have no Clipboard API; a selected textarea still copies.
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }

  function initTooltips(root) {
    if (!window.bootstrap) return;
    root.querySelectorAll('[data-bs-toggle="tooltip"]').forEach(function (element) {
      bootstrap.Tooltip.getOrCreateInstance(element);
    });
  }

  // Dialogs are fetched by htmx into #modal-content; show the modal once they arrive.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "modal-content") {
      bootstrap.Modal.getOrCreateInstance(document.getElementById("modal")).show();
    }
  });
  // The platform panel swaps without the switcher: move the highlight to the platform shown.
  function syncPlatformSwitcher() {
    var panel = document.getElementById("image-platform");
    if (!panel) return;
    document.querySelectorAll("#platform-switcher .nav-link").forEach(function (link) {
      var active = link.dataset.platform === panel.dataset.platform;
      link.classList.toggle("active", active);
      link.setAttribute("aria-selected", active ? "true" : "false");
    });
  }
  document.addEventListener("htmx:afterSettle", syncPlatformSwitcher);

  document.addEventListener("htmx:afterSettle", function (event) {
    initTooltips(event.detail.elt || document);
  });
  // Tooltips left open by a swapped-out element would stay on screen.
  document.addEventListener("htmx:beforeSwap", function () {
    document.querySelectorAll(".tooltip").forEach(function (tip) { tip.remove(); });
  });

  function chartColours() {
    var styles = getComputedStyle(document.documentElement);
    return {
      text: styles.getPropertyValue("--bs-body-color").trim(),
      grid: styles.getPropertyValue("--bs-border-color-translucent").trim(),
    };
  }

  var charts = [];
  function drawCharts() {
    if (!window.Chart) return;
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var colours = chartColours();
    Chart.defaults.color = colours.text;
    Chart.defaults.borderColor = colours.grid;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var config = JSON.parse(document.getElementById(canvas.getAttribute("data-chart")).textContent);
      charts.push(new Chart(canvas, config));
    });
  }
  document.addEventListener("regui:theme", drawCharts);

  document.addEventListener("DOMContentLoaded", function () {
    applyTheme(currentTheme());
    initTooltips(document);
    drawCharts();
  });
})();
