// Debian's Chromium, headless through playwright-core, as both browser checks launch it.
// CHROMIUM names the binary (default /usr/bin/chromium).

import { chromium } from "playwright-core";

// Flags Chromium needs on these machines (shared/field-notes.md); Playwright adds --headless
// and a fresh --user-data-dir itself.
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export function launchChromium() {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  return chromium.launch({ executablePath, headless: true, args: ARGS });
}
