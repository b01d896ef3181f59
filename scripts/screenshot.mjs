// Types a question into Alice's Agents Playground page in headless Chromium, waits for Bob's
// greeting and Alice's notice, and saves a screenshot.  Usage: node screenshot.mjs URL OUT.png
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, ".run", "browser", "package.json"));
const { chromium } = require("playwright-core");

const [url, out, question = "My laptop can't connect to the VPN since this morning"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(url, { waitUntil: "domcontentloaded" });
  const box = page.locator("[data-lexical-editor='true'][role='textbox']");
  await box.waitFor({ timeout: 30000 });
  await box.click();
  await page.keyboard.type(question);
  await page.keyboard.press("Enter");
  await page.getByText("taking over from Alice").first().waitFor({ timeout: 30000 });
  await page.getByText("will message you directly").first().waitFor({ timeout: 30000 });
  await page.screenshot({ path: out });
  console.log(`saved ${out}`);
} finally {
  await browser.close();
}
