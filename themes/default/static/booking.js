/* The client booking pages work without this file; it only adds to them.
   1. Times are shown in the business's zone (<meta name="bookwell-zone">). When the visitor's own zone
      differs, each <time data-local> gets the same instant in their zone beside it.
   2. After a refused form, focus moves to the error summary, which lists what to fix. */
(function () {
  "use strict";

  function ownZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function dayKey(date, zone) {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit"
    }).format(date);
  }

  function showLocalTimes() {
    var meta = document.querySelector('meta[name="bookwell-zone"]');
    var businessZone = meta ? meta.getAttribute("content") : "";
    var zone = ownZone();
    if (!businessZone || !zone || zone === businessZone) {
      return;
    }
    // The page's words and language, not the browser's: a French page says its times in French.
    var wording = document.querySelector('meta[name="bookwell-local-time"]');
    var pattern = (wording && wording.getAttribute("content")) || "({time} your time)";
    // British English, as the server writes it: day before month, a 24-hour clock.
    var language = document.documentElement.getAttribute("lang") || undefined;
    if (language === "en") {
      language = "en-GB";
    }
    var timeOnly = { hour: "2-digit", minute: "2-digit" };
    var withDay = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
    var times = document.querySelectorAll("time[data-local]");
    for (var index = 0; index < times.length; index += 1) {
      var element = times[index];
      var instant = new Date(element.getAttribute("datetime"));
      if (isNaN(instant.getTime())) {
        continue;
      }
      var sameDay = dayKey(instant, zone) === dayKey(instant, businessZone);
      var full = element.getAttribute("data-local") === "full" || !sameDay;
      var shown = instant.toLocaleString(language, Object.assign({ timeZone: zone }, full ? withDay : timeOnly));
      var note = document.createElement("span");
      note.className = "local-time";
      note.textContent = pattern.replace("{time}", shown);
      element.insertAdjacentText("afterend", " ");
      element.parentNode.insertBefore(note, element.nextSibling.nextSibling);
    }
  }

  function focusErrorSummary() {
    var summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
    }
  }

  showLocalTimes();
  focusErrorSummary();
}());
