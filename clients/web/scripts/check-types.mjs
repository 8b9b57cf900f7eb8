// Fails when src/schema.ts is not what openapi-typescript makes of the gateway's openapi.yaml now:
// the package's types and the gateway's contract are one (`npm run types` regenerates them).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = join(mkdtempSync(join(tmpdir(), "wxinvoice-types-")), "schema.ts");
execFileSync(process.execPath, ["node_modules/openapi-typescript/bin/cli.js", "../../openapi.yaml", "-o", out], { stdio: "ignore" });
if (readFileSync(out, "utf8") !== readFileSync("src/schema.ts", "utf8")) {
  console.error("src/schema.ts differs from openapi.yaml: run `npm run types` in clients/web");
  process.exit(1);
}
console.log("check-types: src/schema.ts is openapi.yaml's");
