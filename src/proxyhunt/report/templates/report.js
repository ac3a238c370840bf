// Charts, sorting, filtering and drill-down for the proxyhunt HTML report.
// Log values reach the page only as text: this script reads them with
// textContent and JSON.parse and never writes HTML.
"use strict";

(function () {
  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function drawCharts() {
    var charts = readJson("chart-data");
    if (!charts || typeof window.Plotly === "undefined") {
      return;
    }
    Object.keys(charts).forEach(function (id) {
      var node = document.getElementById(id);
      var figure = charts[id];
      if (node) {
        window.Plotly.newPlot(node, figure.data, figure.layout, figure.config);
      }
    });
  }

  // A sortable table keeps each finding in its own tbody (its summary row
  // and its hidden details row), so sorting moves the two together.
  function sortKey(group, column, numeric) {
    var cell = group.rows[0].cells[column];
    var value = cell ? cell.getAttribute("data-sort") : null;
    if (value === null && cell) {
      value = cell.textContent.trim();
    }
    if (numeric) {
      var number = parseFloat(value);
      return isNaN(number) ? -Infinity : number;
    }
    return (value || "").toLowerCase();
  }

  function setUpSorting(table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      if (header.hasAttribute("data-nosort")) {
        return;
      }
      header.setAttribute("tabindex", "0");
      function sort() {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        var numeric = header.getAttribute("data-type") === "number";
        var groups = Array.prototype.slice.call(table.tBodies);
        groups.sort(function (left, right) {
          var a = sortKey(left, column, numeric);
          var b = sortKey(right, column, numeric);
          var order = 0;
          if (a < b) {
            order = -1;
          } else if (a > b) {
            order = 1;
          }
          return ascending ? order : -order;
        });
        Array.prototype.forEach.call(headers, function (other) {
          other.removeAttribute("aria-sort");
        });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        groups.forEach(function (group) {
          table.appendChild(group);
        });
      }
      header.addEventListener("click", sort);
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sort();
        }
      });
    });
  }

  // Every word typed must occur in the finding (details included); the rule
  // selector keeps only the findings of one rule.
  function setUpFiltering(panel) {
    var table = document.getElementById(panel.getAttribute("data-filter-for"));
    var search = panel.querySelector("input[type=search]");
    var rule = panel.querySelector("select");
    var counter = panel.querySelector(".shown");
    var groups = Array.prototype.slice.call(table.tBodies);
    var texts = groups.map(function (group) {
      return group.textContent.toLowerCase();
    });
    function apply() {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var selectedRule = rule ? rule.value : "";
      var visible = 0;
      groups.forEach(function (group, index) {
        var match = words.every(function (word) {
          return texts[index].indexOf(word) !== -1;
        });
        if (selectedRule && group.getAttribute("data-rule") !== selectedRule) {
          match = false;
        }
        group.hidden = !match;
        if (match) {
          visible += 1;
        }
      });
      counter.textContent = visible + " of " + groups.length + " shown";
    }
    search.addEventListener("input", apply);
    if (rule) {
      rule.addEventListener("change", apply);
    }
    apply();
  }

  function setUpDetails() {
    document.querySelectorAll("button.expand").forEach(function (button) {
      button.addEventListener("click", function () {
        var details = button.closest("tbody").querySelector("tr.details");
        var open = details.hidden;
        details.hidden = !open;
        button.setAttribute("aria-expanded", open ? "true" : "false");
        button.textContent = open ? "\u25BE" : "\u25B8";
      });
    });
  }

  document.querySelectorAll("table.sortable").forEach(setUpSorting);
  document.querySelectorAll("[data-filter-for]").forEach(setUpFiltering);
  setUpDetails();
  drawCharts();
})();
