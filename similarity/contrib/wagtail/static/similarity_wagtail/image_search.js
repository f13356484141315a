/* "Search with an image" in Wagtail's admin: a file dropped on the form, or an image
   pasted anywhere on the page, is put into the form's file input and submitted (the
   server checks it like an upload and answers with the results page, or a message).
   Delegated from the document: the image listing swaps its results (and this form) in
   by AJAX. */
(function () {
  'use strict';

  var FORM = '[data-similarity-image-search]';

  function send(form) {
    form.classList.add('is-searching');
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function submitWith(form, file) {
    var transfer = new DataTransfer();
    transfer.items.add(file);
    form.querySelector('input[type=file]').files = transfer.files;
    send(form);
  }

  function firstImage(list) {
    for (var i = 0; list && i < list.length; i += 1) {
      var file = list[i].getAsFile ? list[i].getAsFile() : list[i];
      if (file && /^image\//.test(file.type)) return file;
    }
    return null;
  }

  function formOf(event) {
    return event.target && event.target.closest ? event.target.closest(FORM) : null;
  }

  document.addEventListener('dragover', function (event) {
    var form = formOf(event);
    if (!form) return;
    event.preventDefault();
    form.classList.add('is-dragging');
  });
  document.addEventListener('dragleave', function (event) {
    var form = formOf(event);
    if (form) form.classList.remove('is-dragging');
  });
  document.addEventListener('drop', function (event) {
    var form = formOf(event);
    if (!form) return;
    event.preventDefault();
    form.classList.remove('is-dragging');
    var file = firstImage(event.dataTransfer && event.dataTransfer.files);
    if (file) submitWith(form, file);
  });
  document.addEventListener('change', function (event) {
    var form = formOf(event);
    if (form && event.target.type === 'file' && event.target.files.length) send(form);
  });
  document.addEventListener('paste', function (event) {
    var form = document.querySelector(FORM);
    if (!form) return;
    var target = event.target;
    if (target && (target.isContentEditable ||
        (/^(INPUT|TEXTAREA)$/.test(target.tagName) && target.type !== 'file'))) return;
    var file = firstImage(event.clipboardData && event.clipboardData.items);
    if (file) {
      event.preventDefault();
      submitWith(form, file);
    }
  });
})();
