// The inbox's alert: when an assignment arrives (the live list grows), a short tone and, where the
// officer allowed it, a desktop notification. The officer turns it on or off; the choice is kept
// in this browser.
(function () {
  "use strict";
  var key = "whistle.inbox.alert";
  var button = document.getElementById("alert-toggle");
  var inbox = document.getElementById("inbox");
  if (!button || !inbox) {
    return;
  }
  function on() {
    return window.localStorage.getItem(key) === "on";
  }
  function show() {
    button.setAttribute("aria-pressed", on() ? "true" : "false");
    button.textContent = on() ? button.dataset.on : button.dataset.off;
  }
  button.addEventListener("click", function () {
    window.localStorage.setItem(key, on() ? "off" : "on");
    if (on() && "Notification" in window && Notification.permission === "default") {
      Notification.requestPermission();
    }
    show();
  });
  show();

  function count() {
    return inbox.querySelectorAll("li[data-issue]").length;
  }
  function tone() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      return;
    }
    var ctx = new Ctx();
    var osc = ctx.createOscillator();
    osc.frequency.value = 880;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.2);
  }
  var seen = count();
  inbox.addEventListener("htmx:afterSettle", function () {
    var now = count();
    if (now > seen && on()) {
      tone();
      if ("Notification" in window && Notification.permission === "granted") {
        new Notification(button.dataset.title);
      }
      // How many alerts this page gave, for whoever checks that it does.
      inbox.dataset.alerts = String((Number(inbox.dataset.alerts) || 0) + 1);
    }
    seen = now;
  });
})();
