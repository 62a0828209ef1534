// Stripe Elements for the billing page: the card goes from the browser to
// Stripe only. On submit the SetupIntent is confirmed with Stripe, then the
// form posts just the SetupIntent id to Dunwell.
(function () {
  "use strict";
  var form = document.getElementById("stripe-card-form");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(form.dataset.key);
  var card = stripe.elements().create("card", { hidePostalCode: false });
  var live = document.getElementById("card-element-live");
  var busy = false;
  card.mount("#card-element");
  card.on("change", function (event) {
    live.textContent = event.error ? event.error.message : "";
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    live.textContent = "";
    stripe.confirmCardSetup(form.dataset.secret, {
      payment_method: { card: card, billing_details: { name: form.dataset.name } }
    }).then(function (result) {
      if (result.error) {
        live.textContent = result.error.message;
        busy = false;
        return;
      }
      form.elements.setup_intent.value = result.setupIntent.id;
      form.submit();
    });
  });
}());
