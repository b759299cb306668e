// Progressive enhancement only: every page works without this file.
// On the application form, the disease field is shown only for
// disease-specific research (DUO:0000007).
document.addEventListener("DOMContentLoaded", function () {
  var disease = document.getElementById("disease");
  if (!disease) return;
  var help = document.getElementById("disease-help");
  var label = document.querySelector("label[for=disease]");
  var radios = document.querySelectorAll("input[name=purpose]");
  function update() {
    var chosen = document.querySelector("input[name=purpose]:checked");
    var needed = chosen && chosen.value === "DUO:0000007";
    [disease, help, label].forEach(function (element) {
      if (element) element.hidden = !needed;
    });
    disease.required = !!needed;
  }
  radios.forEach(function (radio) { radio.addEventListener("change", update); });
  update();
});
