// Package e2e holds the end-to-end tests of mami's tracking server that need Node.js: the official W&B JS
// SDK (@wandb/sdk 0.5.1) logging to a live server, and the dashboard driven in headless Chromium through
// playwright-core. They skip, saying so, when node_modules is missing: run `npm ci` in this folder.
package e2e
