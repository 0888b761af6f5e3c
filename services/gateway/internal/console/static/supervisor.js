// The supervisor's pages' script: it draws the scorecards' chart from the page's JSON data block
// (the table beside it holds the same figures, for anyone who cannot see the chart). Every word
// it shows comes from that block, which the server writes in the person's language.
(function () {
  'use strict';

  // The two series' colours: a blue and an orange that stay apart for colour-blind eyes.
  var colours = ['#0b63a8', '#d9730d'];

  // wrap breaks a subject's name into lines of at most width units, so that a long name fits
  // beside its bars on a phone: a CJK character counts two units, any other one; Latin text
  // breaks between words where it can.
  function wrap(label, width) {
    var lines = [];
    var line = '';
    var used = 0;
    var parts = label.split(/(\s+)/);
    parts.forEach(function (part) {
      Array.from(/\s/.test(part) ? ' ' : part).forEach(function (ch, i, all) {
        var w = /[\u2e80-\u9fff\uff00-\uffef]/.test(ch) ? 2 : 1;
        // A word that would overflow starts a new line, unless it is longer than a line itself.
        if (i === 0 && ch !== ' ' && used > 0 && used + all.length > width && all.length <= width) {
          lines.push(line.trim());
          line = '';
          used = 0;
        }
        if (used + w > width && used > 0) {
          lines.push(line.trim());
          line = '';
          used = 0;
        }
        line += ch;
        used += w;
      });
    });
    if (line.trim() !== '') {
      lines.push(line.trim());
    }
    return lines.length > 1 ? lines : label;
  }

  function draw() {
    var block = document.getElementById('scorecard-chart-data');
    var canvas = document.getElementById('scorecard-chart');
    if (!block || !canvas || typeof window.Chart === 'undefined') {
      return;
    }
    var data = JSON.parse(block.textContent);
    if (!data.labels || data.labels.length === 0) {
      return;
    }
    // One row of bars per subject: the box grows with them, in rem, so zoom keeps them legible.
    var box = canvas.parentElement;
    var rem = parseFloat(window.getComputedStyle(document.documentElement).fontSize);
    var width = Math.max(10, Math.floor(box.clientWidth / rem / 1.6));
    var labels = data.labels.map(function (l) { return wrap(l, width); });
    var lines = labels.reduce(function (n, l) { return n + (Array.isArray(l) ? l.length : 1); }, 0);
    box.style.height = (Math.max(lines * 1.4, data.labels.length * data.series.length * 1.2) + data.labels.length + 7) + 'rem';
    window.Chart.defaults.font.family = window.getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.font.size = parseFloat(window.getComputedStyle(document.body).fontSize) * 0.9;
    new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels: labels,
        datasets: data.series.map(function (s, i) {
          return { label: s.label, data: s.values, backgroundColor: colours[i % colours.length] };
        })
      },
      options: {
        indexAxis: 'y',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { min: 0, max: 100, title: { display: true, text: data.axis }, ticks: { callback: function (v) { return v + '%'; } } },
          y: { ticks: { autoSkip: false } }
        },
        plugins: {
          legend: { position: 'top' },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ': ' + c.formattedValue + '%'; } } }
        }
      }
    });
    canvas.setAttribute('data-drawn', 'true');
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', draw);
  } else {
    draw();
  }
})();
