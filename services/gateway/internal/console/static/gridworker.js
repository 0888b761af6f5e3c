// The grid worker's raise form: find the raise's point with the phone's location or a pin on the
// map of the grid, check the photos chosen against the API's limits before they are sent, show
// them, and keep a double tap from sending the form twice (the server raises once per form in any
// case). The page works without it: the raise is then placed in the worker's grid. Every string
// comes from the page, in the person's language; {name} marks are filled in here.
(function () {
  'use strict';

  var form = document.getElementById('raise');
  if (!form) {
    return;
  }

  function fill(template, values) {
    return (template || '').replace(/\{(\w+)\}/g, function (mark, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : mark;
    });
  }

  // The place: the hidden latitude and longitude, filled from navigator.geolocation or by a pin on
  // the map of the grid, always to 6 decimals (about 0.1 m), and emptied by "unlocate".
  var lat = document.getElementById('latitude');
  var lon = document.getElementById('longitude');
  var locate = document.getElementById('locate');
  var unlocate = document.getElementById('unlocate');
  var status = document.getElementById('place-status');
  // pinAt shows the form's point on the map, or takes the pin away for null; the map sets it.
  var pinAt = function () {};

  // place fills the point and says so with message, whose {lat} and {lon} are the point's.
  function place(latitude, longitude, message, values) {
    lat.value = latitude.toFixed(6);
    lon.value = longitude.toFixed(6);
    status.textContent = fill(message, Object.assign({ lat: lat.value, lon: lon.value }, values || {}));
    unlocate.hidden = false;
    pinAt(Number(lat.value), Number(lon.value));
  }

  if (locate && unlocate && lat && lon && status) {
    unlocate.hidden = lat.value === '';
    unlocate.addEventListener('click', function () {
      lat.value = '';
      lon.value = '';
      status.textContent = locate.dataset.cleared;
      unlocate.hidden = true;
      pinAt(null);
      (locate.hidden ? document.getElementById('pin-map') || locate : locate).focus();
    });
    if ('geolocation' in navigator) {
      locate.hidden = false;
      locate.addEventListener('click', function () {
        status.textContent = locate.dataset.locating;
        locate.setAttribute('aria-disabled', 'true');
        navigator.geolocation.getCurrentPosition(function (pos) {
          place(pos.coords.latitude, pos.coords.longitude, locate.dataset.located, { acc: Math.round(pos.coords.accuracy) });
          locate.removeAttribute('aria-disabled');
        }, function (err) {
          status.textContent = err.code === err.PERMISSION_DENIED ? locate.dataset.denied : locate.dataset.failed;
          locate.removeAttribute('aria-disabled');
        }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
      });
    }
    pinMap();
  }

  // inRing tells whether the point is inside a GeoJSON ring, by counting the edges a ray from it
  // crosses.
  function inRing(ring, latitude, longitude) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > latitude) !== (yj > latitude) && longitude < (xj - xi) * (latitude - yi) / (yj - yi) + xi) {
        inside = !inside;
      }
    }
    return inside;
  }

  // inGrid tells whether the point is in a grid's boundary: in an outer ring and in none of its
  // holes.
  function inGrid(geometry, latitude, longitude) {
    var polygons = geometry.type === 'Polygon' ? [geometry.coordinates]
      : geometry.type === 'MultiPolygon' ? geometry.coordinates : [];
    return polygons.some(function (rings) {
      return rings.every(function (ring, i) { return inRing(ring, latitude, longitude) === (i === 0); });
    });
  }

  // pinMap shows the map of the grid (drawn by map.js) and lets a tap, a click, a drag of the pin,
  // or Enter on the map (at its centre, marked while it has the focus) place the point. Without
  // Leaflet or a boundary the map stays hidden, and the place is the location, or the grid.
  function pinMap() {
    var box = document.getElementById('pin-map-box');
    var el = document.getElementById('pin-map');
    var block = document.getElementById('pin-map-data');
    if (!box || !el || !block || !window.L || !window.whistleMap) {
      return;
    }
    var data = JSON.parse(block.textContent);
    var words = data.words || {};
    box.hidden = false; // before Leaflet measures it
    var map = whistleMap.draw(el, data, {
      map: { scrollWheelZoom: false }, // the wheel scrolls the form, not the map
      grids: {
        interactive: false, // a tap on the grid is a tap on the map
        style: function () { return { color: '#0969da', weight: 3, fillColor: '#0969da', fillOpacity: 0.08 }; }
      }
    }).map;
    var pin = null;
    pinAt = function (latitude, longitude) {
      if (latitude === null) {
        if (pin) {
          pin.remove();
          pin = null;
        }
        return;
      }
      var at = L.latLng(latitude, longitude);
      if (pin) {
        pin.setLatLng(at);
      } else {
        pin = L.marker(at, {
          draggable: true, keyboard: false, title: words.pin,
          icon: L.divIcon({ className: 'grid-pin', iconSize: [28, 28], iconAnchor: [14, 28] })
        }).addTo(map);
        pin.on('dragend', function () {
          var p = pin.getLatLng();
          pinned(p.lat, p.lng);
        });
      }
      if (!map.getBounds().contains(at)) {
        map.panTo(at);
      }
    };
    function pinned(latitude, longitude) {
      var inside = (data.grids || []).some(function (g) { return inGrid(g.boundary, latitude, longitude); });
      place(latitude, longitude, inside ? words.pinned : words.outside);
    }
    map.on('click', function (e) {
      pinned(e.latlng.lat, e.latlng.lng);
    });
    el.addEventListener('keydown', function (e) {
      if (e.target === el && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault(); // Space would scroll the page
        var c = map.getCenter();
        pinned(c.lat, c.lng);
      }
    });
    if (lat.value !== '' && lon.value !== '') {
      pinAt(Number(lat.value), Number(lon.value)); // a form sent back keeps its point
    }
  }

  // The photos: each shot of the camera adds to those taken before (a file input alone would
  // replace them), each may be removed, and all are checked against data-max-photos and
  // data-max-bytes, so that the browser refuses to send too many or too large and says why.
  var photos = document.getElementById('photos');
  var previews = document.getElementById('photo-previews');
  var maxPhotos = Number(form.dataset.maxPhotos);
  var maxBytes = Number(form.dataset.maxBytes);
  var chosen = [];

  function keep(files) {
    // Where the browser cannot set an input's files, it keeps only the last choice, as it shows.
    try {
      var dt = new DataTransfer();
      files.forEach(function (f) { dt.items.add(f); });
      photos.files = dt.files;
      chosen = files;
    } catch (e) {
      chosen = Array.prototype.slice.call(photos.files || []);
    }
    var problem = '';
    if (chosen.length > maxPhotos) {
      problem = fill(form.dataset.tooMany, { max: maxPhotos, n: chosen.length });
    }
    chosen.forEach(function (f) {
      if (problem === '' && f.size > maxBytes) {
        problem = fill(form.dataset.tooLarge, { name: f.name });
      }
    });
    photos.setCustomValidity(problem);
    if (problem !== '') {
      photos.reportValidity();
    }
    show();
  }

  function show() {
    Array.prototype.forEach.call(previews.querySelectorAll('img'), function (img) {
      URL.revokeObjectURL(img.src);
    });
    previews.textContent = '';
    chosen.forEach(function (f, i) {
      var li = document.createElement('li');
      var img = document.createElement('img');
      img.src = URL.createObjectURL(f);
      img.alt = fill(form.dataset.previewAlt, { n: i + 1, name: f.name });
      var remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary';
      remove.textContent = fill(form.dataset.remove, { n: i + 1 });
      remove.addEventListener('click', function () {
        keep(chosen.filter(function (_, j) { return j !== i; }));
        photos.focus();
      });
      li.appendChild(img);
      li.appendChild(remove);
      previews.appendChild(li);
    });
  }

  if (photos && previews) {
    photos.addEventListener('change', function () {
      var added = Array.prototype.slice.call(photos.files || []).filter(function (f) {
        return !chosen.some(function (c) {
          return c.name === f.name && c.size === f.size && c.lastModified === f.lastModified;
        });
      });
      keep(chosen.concat(added));
    });
  }

  // One send per tap: a second submit while the first is on its way is dropped.
  var submit = document.getElementById('raise-submit');
  var label = submit ? submit.textContent : '';
  var sending = false;
  form.addEventListener('submit', function (e) {
    if (sending) {
      e.preventDefault();
      return;
    }
    sending = true;
    if (submit) {
      submit.setAttribute('aria-disabled', 'true');
      submit.textContent = form.dataset.sending;
    }
  });
  // A page shown again from the history may be sent again, as a retry.
  window.addEventListener('pageshow', function () {
    sending = false;
    if (submit) {
      submit.removeAttribute('aria-disabled');
      submit.textContent = label;
    }
  });
}());
