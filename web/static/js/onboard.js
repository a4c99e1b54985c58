// The onboarding wizard, step 1: only the chosen provider's model list is shown. Without
// JavaScript every provider's list shows under its name, and the chosen one's is used.
(function () {
  "use strict";
  var radios = document.querySelectorAll('input[name="model_provider"]');
  if (!radios.length) {
    return;
  }
  function show() {
    radios.forEach(function (radio) {
      var models = document.querySelector('.model-field[data-provider="' + radio.value + '"]');
      if (models) {
        models.hidden = !radio.checked;
      }
    });
  }
  radios.forEach(function (radio) {
    radio.addEventListener("change", show);
  });
  show();
})();
