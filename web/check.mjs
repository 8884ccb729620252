// The bundle's budget: the app's JavaScript, gzipped, stays within 150 KB.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const LIMIT = 150 * 1024;
const dir = join("dist", "assets");
const files = readdirSync(dir).filter((name) => name.endsWith(".js.gz"));
const total = files.reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
console.log(`web app JavaScript, gzipped: ${total} bytes (${(total / 1024).toFixed(1)} KB; limit 150 KB)`);
if (files.length === 0 || total > LIMIT) {
  console.error(files.length === 0 ? "no gzipped JavaScript in dist/assets" : "over the limit");
  process.exit(1);
}
