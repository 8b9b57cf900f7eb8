// What `npm pack` would publish: exactly the built package, its manifest and README, at the
// gateway's version (the workspace's in Cargo.toml).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const cargo = readFileSync("../../Cargo.toml", "utf8");
const gateway = /\[workspace\.package\][^[]*?version = "([^"]+)"/s.exec(cargo)?.[1];
const { version } = JSON.parse(readFileSync("package.json", "utf8"));
if (version !== gateway) {
  console.error(`package.json has version ${version}, the gateway ${gateway}: they are released together`);
  process.exit(1);
}

const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], { encoding: "utf8" }));
const files = pack.files.map((f) => f.path).sort();
const want = ["README.md", "dist/index.d.ts", "dist/index.js", "dist/mini.d.ts", "dist/mini.js", "dist/page.d.ts", "dist/page.js",
  "dist/schema.d.ts", "dist/schema.js", "package.json"];
if (JSON.stringify(files) !== JSON.stringify(want)) {
  console.error(`npm pack would publish ${JSON.stringify(files)}, not ${JSON.stringify(want)}`);
  process.exit(1);
}
console.log(`check-pack: ${pack.filename}, ${files.length} files, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked: ${files.join(", ")}`);
