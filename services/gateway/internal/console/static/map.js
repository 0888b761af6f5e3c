// Draws the grids of the person's area from their boundaries, each coloured by what is open and
// breached in it, with the city's tile server beneath when it has one (none is fetched otherwise).
(function () {
  "use strict";
  var el = document.getElementById("map");
  var block = document.getElementById("map-data");
  if (!el || !block || !window.L) {
    return;
  }
  var data = JSON.parse(block.textContent);
  var words = data.words || {};
  var map = L.map(el, { attributionControl: false });
  if (data.tiles) {
    L.tileLayer(data.tiles, { maxZoom: 19 }).addTo(map);
  }
  function colour(g) {
    if (g.breaches > 0) {
      return "#b3261e";
    }
    if (g.open > 0) {
      return "#d97706";
    }
    return "#2e7d32";
  }
  var layer = L.geoJSON({
    type: "FeatureCollection",
    features: (data.grids || []).map(function (g) {
      return { type: "Feature", geometry: g.boundary, properties: g };
    })
  }, {
    style: function (f) {
      var c = colour(f.properties);
      return { color: c, weight: 2, fillColor: c, fillOpacity: 0.35 };
    },
    onEachFeature: function (f, l) {
      var g = f.properties;
      var box = document.createElement("div");
      var name = document.createElement("strong");
      name.textContent = g.name;
      box.appendChild(name);
      var counts = document.createElement("p");
      counts.textContent = words.open + " " + g.open + " · " + words.breaches + " " + g.breaches;
      box.appendChild(counts);
      var link = document.createElement("a");
      link.href = "/console/breaches?area=" + encodeURIComponent(g.id);
      link.textContent = words.board;
      box.appendChild(link);
      l.bindPopup(box);
      l.bindTooltip(g.name + ": " + g.open + " / " + g.breaches);
      l.on("add", function () {
        var p = l.getElement();
        if (p) {
          p.setAttribute("data-grid", g.id);
          p.setAttribute("data-open", String(g.open));
          p.setAttribute("data-breaches", String(g.breaches));
        }
      });
    }
  }).addTo(map);
  var bounds = layer.getBounds();
  if (bounds.isValid()) {
    map.fitBounds(bounds, { padding: [12, 12] });
  } else {
    map.setView([0, 0], 2);
  }
  el.dataset.drawn = String((data.grids || []).length);
})();
