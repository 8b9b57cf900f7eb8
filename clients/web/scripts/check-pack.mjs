// What `npm pack` would publish: exactly the built package, its manifest and README.
import { execFileSync } from "node:child_process";

const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], { encoding: "utf8" }));
const files = pack.files.map((f) => f.path).sort();
const want = ["README.md", "dist/index.d.ts", "dist/index.js", "dist/mini.d.ts", "dist/mini.js", "dist/page.d.ts", "dist/page.js",
  "dist/schema.d.ts", "dist/schema.js", "package.json"];
if (JSON.stringify(files) !== JSON.stringify(want)) {
  console.error(`npm pack would publish ${JSON.stringify(files)}, not ${JSON.stringify(want)}`);
  process.exit(1);
}
console.log(`check-pack: ${pack.filename}, ${files.length} files, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked: ${files.join(", ")}`);
