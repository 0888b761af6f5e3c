// Draws grids from their boundaries with Leaflet, with the city's tile server beneath when it has
// one (none is fetched otherwise). whistleMap.draw is shared: the area's map below colours each grid
// by what is open and breached in it, and the grid worker's raise form (gridworker.js) pins a point
// on the map of its one grid.
(function () {
  "use strict";
  if (!window.L) {
    return;
  }

  // draw makes a map in el of data's grids (data as map.go's mapData) and fits it to them.
  // options.map is given to L.map, options.grids to L.geoJSON (style, onEachFeature, ...).
  // It returns the map and the grids' layer.
  function draw(el, data, options) {
    options = options || {};
    var words = data.words || {};
    var map = L.map(el, Object.assign({ attributionControl: false, zoomControl: false }, options.map));
    // The zoom buttons' names are the page's, in its language, where it gives them.
    L.control.zoom({
      zoomInTitle: words.zoom_in || "Zoom in",
      zoomOutTitle: words.zoom_out || "Zoom out"
    }).addTo(map);
    if (data.tiles) {
      L.tileLayer(data.tiles, { maxZoom: 19 }).addTo(map);
    }
    var layer = L.geoJSON({
      type: "FeatureCollection",
      features: (data.grids || []).map(function (g) {
        return { type: "Feature", geometry: g.boundary, properties: g };
      })
    }, options.grids).addTo(map);
    var bounds = layer.getBounds();
    if (bounds.isValid()) {
      map.fitBounds(bounds, { padding: [12, 12] });
    } else {
      map.setView([0, 0], 2);
    }
    el.dataset.drawn = String((data.grids || []).length);
    return { map: map, layer: layer };
  }
  window.whistleMap = { draw: draw };

  // The area's map, where the page has one.
  var el = document.getElementById("map");
  var block = document.getElementById("map-data");
  if (!el || !block) {
    return;
  }
  var data = JSON.parse(block.textContent);
  var words = data.words || {};
  function colour(g) {
    if (g.breaches > 0) {
      return "#b3261e";
    }
    if (g.open > 0) {
      return "#d97706";
    }
    return "#2e7d32";
  }
  draw(el, data, {
    grids: {
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
    }
  });
})();
