// podgate progressive touches. Every page works without this file; it only makes a few things nicer.
(function () {
  'use strict';

  // Reveal controls that need JavaScript.
  document.querySelectorAll('.js-only').forEach(function (el) { el.hidden = false; });

  // CSR upload: read a chosen file into the textarea, so the form still posts plain text.
  var csrFile = document.getElementById('csr-file');
  var csr = document.getElementById('csr');
  if (csrFile && csr) {
    csrFile.addEventListener('change', function () {
      var f = csrFile.files && csrFile.files[0];
      if (!f) return;
      f.text().then(function (text) { csr.value = text.trim(); });
    });
  }

  // After "Create and download", the browser stays on the page while the file downloads. The form
  // sends a random token; the download answer sets it as a cookie, and when it appears the list is
  // reloaded to show the new device.
  var form = document.querySelector('.js-download-form');
  if (form) {
    form.addEventListener('submit', function () {
      var token = Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
      var field = form.querySelector('input[name=dl]');
      if (!field) {
        field = document.createElement('input');
        field.type = 'hidden';
        field.name = 'dl';
        form.appendChild(field);
      }
      field.value = token;
      var status = form.querySelector('.js-after-download');
      if (status) status.textContent = 'Creating your profile… the download starts in a moment.';
      var started = Date.now();
      var timer = setInterval(function () {
        if (document.cookie.indexOf('podgate_dl=' + token) !== -1) {
          clearInterval(timer);
          document.cookie = 'podgate_dl=; Max-Age=0; Path=/; SameSite=Strict';
          if (status) status.textContent = 'Downloaded. Updating the list…';
          setTimeout(function () { window.location.reload(); }, 500);
        } else if (Date.now() - started > 60000) {
          clearInterval(timer);
        }
      }, 250);
    });
  }

  // Filters apply as soon as a select or checkbox changes.
  document.querySelectorAll('.js-autosubmit select, .js-autosubmit input[type=checkbox]').forEach(function (el) {
    el.addEventListener('change', function () { el.form.submit(); });
  });
})();

// Deploy progress: poll the JSON API and update the log in place while a deploy runs (without
// JavaScript the page refreshes itself instead).
(function () {
  'use strict';
  var box = document.getElementById('deploy-progress');
  if (!box || box.getAttribute('data-state') !== 'running') return;
  function render(d) {
    var list = box.querySelector('ol.log');
    if (!list) {
      list = document.createElement('ol');
      list.className = 'log';
      box.appendChild(list);
    }
    while (list.firstChild) list.removeChild(list.firstChild);
    d.events.forEach(function (e) {
      var li = document.createElement('li');
      var t = document.createElement('time');
      t.setAttribute('datetime', e.time);
      t.textContent = e.time.slice(0, 16).replace('T', ' ') + ' UTC';
      li.appendChild(t);
      li.appendChild(document.createTextNode(' ' + e.message));
      list.appendChild(li);
    });
    var state = box.querySelector('.deploy-state');
    if (state) state.textContent = d.state;
  }
  var timer = setInterval(function () {
    fetch('/api/v1/deploy', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (d) {
        render(d);
        if (d.state !== 'running') {
          clearInterval(timer);
          window.location.reload();
        }
      })
      .catch(function () { clearInterval(timer); });
  }, 1000);
})();
