// Hover details and filtering only: the page says everything without this script.
(function () {
  "use strict";
  var node = document.getElementById("flowctl-data");
  var data = node ? JSON.parse(node.textContent) : {steps: []};
  var byStep = {};
  Array.prototype.forEach.call(document.querySelectorAll("[data-step]"), function (el) {
    var name = el.getAttribute("data-step");
    (byStep[name] = byStep[name] || []).push(el);
  });

  var panel = document.createElement("div");
  panel.id = "hover";
  panel.hidden = true;
  document.body.appendChild(panel);
  var lit = [];

  function owner(el) {
    while (el && el.getAttribute) {
      if (el.hasAttribute("data-step")) { return el; }
      el = el.parentNode;
    }
    return null;
  }
  // The title of the hovered shape (a bar's says which try), under the step's name.
  function titleOf(el, group) {
    var name = group.getAttribute("data-step");
    for (; el && el !== group.parentNode; el = el.parentNode) {
      for (var c = el.firstElementChild; c; c = c.nextElementSibling) {
        if (c.tagName.toLowerCase() === "title") {
          return el === group ? c.textContent : name + "\n" + c.textContent;
        }
      }
    }
    return name;
  }
  document.addEventListener("mouseover", function (ev) {
    var group = owner(ev.target);
    lit.forEach(function (el) { el.classList.remove("lit"); });
    lit = [];
    if (!group) { panel.hidden = true; return; }
    lit = byStep[group.getAttribute("data-step")] || [];
    lit.forEach(function (el) { el.classList.add("lit"); });
    panel.textContent = titleOf(ev.target, group);
    panel.hidden = false;
  });

  var main = document.querySelector("main");
  if (!main || !data.steps.length) { return; }
  var bar = document.createElement("div");
  bar.className = "filter";
  var search = document.createElement("input");
  search.type = "search";
  search.placeholder = "Filter steps by name";
  search.setAttribute("aria-label", "Filter steps by name");
  bar.appendChild(search);
  var statuses = [];
  data.steps.forEach(function (s) {
    if (s.status && statuses.indexOf(s.status) < 0) { statuses.push(s.status); }
  });
  var boxes = statuses.sort().map(function (status) {
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.value = status;
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + status));
    bar.appendChild(label);
    return box;
  });
  function apply() {
    var query = search.value.toLowerCase();
    var shown = {};
    boxes.forEach(function (b) { shown[b.value] = b.checked; });
    data.steps.forEach(function (s) {
      var keep = s.step.toLowerCase().indexOf(query) >= 0 && (!s.status || shown[s.status]);
      (byStep[s.step] || []).forEach(function (el) { el.classList.toggle("dim", !keep); });
    });
  }
  bar.addEventListener("input", apply);
  bar.addEventListener("change", apply);
  main.insertBefore(bar, main.firstChild);
})();
