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

  // After "Create and download", the browser stays on the page while the file downloads:
  // say so, then reload so the new device shows in the list.
  var form = document.querySelector('.js-download-form');
  if (form) {
    form.addEventListener('submit', function () {
      var status = form.querySelector('.js-after-download');
      if (status) status.textContent = 'Creating your profile… the download starts in a moment.';
      setTimeout(function () { window.location.reload(); }, 2500);
    });
  }

  // Filters apply as soon as a select or checkbox changes.
  document.querySelectorAll('.js-autosubmit select, .js-autosubmit input[type=checkbox]').forEach(function (el) {
    el.addEventListener('change', function () { el.form.submit(); });
  });
})();
