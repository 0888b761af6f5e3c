// The grid worker's raise form: find the raise's point with the phone's location, check the photos
// chosen against the API's limits before they are sent, show them, and keep a double tap from
// sending the form twice (the server raises once per form in any case). The page works without
// it: the raise is then placed in the worker's grid. Every string comes from the page, in the
// person's language; {name} marks are filled in here.
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

  // The place: the hidden latitude and longitude, filled from navigator.geolocation.
  var lat = document.getElementById('latitude');
  var lon = document.getElementById('longitude');
  var locate = document.getElementById('locate');
  var unlocate = document.getElementById('unlocate');
  var status = document.getElementById('place-status');
  if (locate && unlocate && lat && lon && status && 'geolocation' in navigator) {
    locate.hidden = false;
    unlocate.hidden = lat.value === '';
    locate.addEventListener('click', function () {
      status.textContent = locate.dataset.locating;
      locate.setAttribute('aria-disabled', 'true');
      navigator.geolocation.getCurrentPosition(function (pos) {
        lat.value = pos.coords.latitude.toFixed(6);
        lon.value = pos.coords.longitude.toFixed(6);
        status.textContent = fill(locate.dataset.located, {
          lat: lat.value, lon: lon.value, acc: Math.round(pos.coords.accuracy)
        });
        locate.removeAttribute('aria-disabled');
        unlocate.hidden = false;
      }, function (err) {
        status.textContent = err.code === err.PERMISSION_DENIED ? locate.dataset.denied : locate.dataset.failed;
        locate.removeAttribute('aria-disabled');
      }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
    });
    unlocate.addEventListener('click', function () {
      lat.value = '';
      lon.value = '';
      status.textContent = locate.dataset.cleared;
      unlocate.hidden = true;
      locate.focus();
    });
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
