// "Check my connection" (devices page): fetches podgate's probe through the tunnel from each address the
// page lists, and shows each check green or red with the fix for red. A probe is green only when it
// answers {"podgate":"reachable","nonce":<the random value sent>}: a captive portal or another host
// cannot produce it. Runs only when the button is pressed; nothing leaves the page but the nonce.
(function () {
  'use strict';
  var button = document.getElementById('check-connection');
  var list = document.getElementById('check-list');
  if (!button || !list) return;
  button.hidden = false;
  var TIMEOUT_MS = 4000;

  function nonce() {
    var bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, Array.from(bytes)))
      .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function probe(url) {
    var n = nonce();
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    return fetch(url + '?nonce=' + n, { mode: 'cors', credentials: 'omit', cache: 'no-store', signal: ctl.signal })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) { return !!body && body.podgate === 'reachable' && body.nonce === n; })
      .catch(function () { return false; })
      .finally(function () { clearTimeout(timer); });
  }

  function show(id, on) {
    var el = document.getElementById(id);
    if (el) el.hidden = !on;
  }

  function setState(li, state, text) {
    li.setAttribute('data-state', state);
    li.querySelector('.check-state').textContent = text;
  }

  button.addEventListener('click', function () {
    var items = Array.prototype.slice.call(list.querySelectorAll('li[data-url]'));
    ['fix-tunnel', 'fix-route', 'fix-dns', 'fix-mixed', 'check-ok'].forEach(function (id) { show(id, false); });
    button.disabled = true;
    var blocked = location.protocol === 'https:' &&
      items.some(function (li) { return li.getAttribute('data-url').indexOf('http:') === 0; });
    items.forEach(function (li) { setState(li, 'running', 'checking…'); });
    Promise.all(items.map(function (li) {
      return probe(li.getAttribute('data-url')).then(function (ok) {
        setState(li, ok ? 'ok' : 'failed', ok ? 'reachable' : 'not reachable');
        return { kind: li.getAttribute('data-check'), ok: ok };
      });
    })).then(function (results) {
      function failed(kind) { return results.some(function (r) { return r.kind === kind && !r.ok; }); }
      function passed(kind) { return results.some(function (r) { return r.kind === kind && r.ok; }); }
      if (blocked && !results.some(function (r) { return r.ok; })) show('fix-mixed', true);
      else if (failed('tunnel')) show('fix-tunnel', true);
      else if (failed('pod') && !passed('pod') && !passed('service-ip')) {
        // Cluster mode: no server pod answers and nothing else shows the tunnel is up.
        show('fix-tunnel', true);
        show('fix-route', true);
      } else if (failed('pod') || failed('service-ip')) show('fix-route', true);
      else if (failed('service-dns')) show('fix-dns', true);
      else show('check-ok', true);
      list.setAttribute('data-done', 'true');
      button.disabled = false;
    });
  });
})();
