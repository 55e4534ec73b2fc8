'use strict';
// index.js: the projects page. Relative times, and the server's own address in the set-up hint.
for (const td of document.querySelectorAll('[data-time]')) td.textContent = mami.fmtAgo(+td.dataset.time);
const origin = document.getElementById('origin');
if (origin) origin.textContent = location.origin;
